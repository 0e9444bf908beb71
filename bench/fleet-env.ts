/**
 * The environment the fleet benchmarks share: the local environment of `vmconvoy dev` (Temporal dev server,
 * versitygw, the EC2 simulator, one worker process) on free ports, plus an S3 proxy that can cap the
 * uplink. Benchmarks reconfigure the simulator and restart the worker through it, and start batches the way
 * `vmconvoy start` does (same code), with settings the CLI has no flag for when they must.
 */
import type { Client } from '@temporalio/client';
import { Connection, Client as TemporalClient } from '@temporalio/client';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { VmconvoyConfig } from '../common/config';
import { loadConfig } from '../common/config';
import type { StartOptions } from '../client/commands/start';
import { startCommand } from '../client/commands/start';
import type { LocalEnv } from '../dev/local-env';
import { envVarsFor, startLocalEnv } from '../dev/local-env';
import { freePort } from '../dev/process';
import { DEFAULT_CONFIG } from '../sim/config';
import type { CountingProxy } from '../test/helpers/counting-proxy';
import { startCountingProxy } from '../test/helpers/counting-proxy';
import type { SimState } from '../test/helpers/testbed';
import { tempDir } from '../test/helpers/testbed';
import { peakRssOf, sleep } from './util';

export interface BenchFleet {
  local: LocalEnv;
  client: Client;
  /** The configuration `vmconvoy start` would load against this environment. */
  config: VmconvoyConfig;
  dir: string;
  /** Replaces the simulator's config (speed, limits, faults) and zeroes its state and call counts. */
  resetSim(config: unknown): Promise<void>;
  simState(): Promise<SimState>;
  /**
   * Restarts the worker, uploading through a proxy capped at `uploadBytesPerSecond` when given, directly
   * otherwise; returns the proxy.
   */
  restartWorker(opts?: { uploadBytesPerSecond?: number; env?: NodeJS.ProcessEnv }): Promise<CountingProxy | undefined>;
  /** Writes an inventory CSV; returns its path. */
  writeCsv(name: string, lines: string[]): Promise<string>;
  /** `vmconvoy start` (validation included), timed. */
  start(csv: string, opts: StartOptions): Promise<{ seconds: number; vms: number }>;
  /** Waits until the batch's fleet workflow closes; returns seconds since `since`. */
  waitClosed(batch: string, since: number, timeoutMs: number): Promise<number>;
  /** Peak RSS of the current worker process (VmHWM), bytes. */
  workerPeakRss(): Promise<number | undefined>;
  stop(): Promise<void>;
}

export async function startBenchFleet(log: (line: string) => void): Promise<BenchFleet> {
  const dir = await tempDir('vmconvoy-bench-');
  const ports = { temporal: await freePort(), ui: await freePort(), s3: await freePort(), ec2: await freePort() };
  const local = await startLocalEnv({
    stateDir: path.join(dir.dir, 'state'),
    ports,
    worker: false,
    log: () => undefined,
  });
  const env = envVarsFor(local.info);
  const config = loadConfig(env);
  const connection = await Connection.connect({ address: local.info.temporalAddress });
  const client = new TemporalClient({ connection });
  let proxy: CountingProxy | undefined;
  log(
    `environment up: Temporal ${local.info.temporalAddress}, S3 ${local.info.s3Endpoint}, EC2 simulator ${local.info.ec2Endpoint}`
  );

  const sim = async (route: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(
      `${local.info.simControlUrl}/${route}`,
      body === undefined
        ? {}
        : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
    );
    if (!res.ok) throw new Error(`simulator ${route}: ${res.status} ${await res.text()}`);
    return res.json();
  };

  return {
    local,
    client,
    config,
    dir: dir.dir,
    resetSim: async (simConfig) => {
      await sim('reset', {});
      // Back to the defaults first: a patch from an earlier benchmark must not leak into this one.
      await sim('config', DEFAULT_CONFIG);
      // The benchmarks' images are random bytes: judge containers, not guests (judging reads every byte).
      await sim('config', { judge: { content: false } });
      await sim('config', simConfig);
    },
    simState: async () => (await sim('state')) as SimState,
    restartWorker: async (opts = {}) => {
      await proxy?.close();
      proxy = opts.uploadBytesPerSecond
        ? await startCountingProxy(local.info.s3Endpoint, { bytesPerSecond: opts.uploadBytesPerSecond })
        : undefined;
      await local.restartWorker({ ...(proxy ? { AWS_ENDPOINT_URL_S3: proxy.endpoint } : {}), ...opts.env });
      return proxy;
    },
    writeCsv: async (name, lines) => {
      const file = path.join(dir.dir, name);
      await writeFile(file, `${lines.join('\n')}\n`);
      return file;
    },
    start: async (csv, opts) => {
      const t0 = performance.now();
      const result = await startCommand(csv, opts, config, () => Promise.resolve(client));
      if (!result.ok)
        throw new Error(`start ${opts.batch}: ${result.errors.map((e) => `line ${e.line}: ${e.message}`).join('; ')}`);
      return { seconds: (performance.now() - t0) / 1000, vms: result.vms };
    },
    waitClosed: async (batch, since, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        // A describe the server does not answer in time (a loaded machine) is asked again, until the deadline.
        const described = await client.workflow
          .getHandle(batch)
          .describe()
          .catch((err: unknown) => {
            if (Date.now() > deadline) throw err;
            return undefined;
          });
        if (!described) {
          await sleep(1000);
          continue;
        }
        const { status } = described;
        if (status.name !== 'RUNNING') {
          if (status.name !== 'COMPLETED') throw new Error(`batch ${batch} ended ${status.name}`);
          return (Date.now() - since) / 1000;
        }
        if (Date.now() > deadline)
          throw new Error(`batch ${batch} still running after ${Math.round(timeoutMs / 1000)} s`);
        await sleep(250);
      }
    },
    workerPeakRss: async () => {
      const pid = local.workerProcess?.child.pid;
      return pid === undefined ? undefined : peakRssOf(pid);
    },
    stop: async () => {
      await connection.close().catch(() => undefined);
      await local.stop();
      await proxy?.close();
      await dir.remove();
    },
  };
}

/** Collects the fleet env once for all fleet benchmarks of a run. */
let shared: Promise<BenchFleet> | undefined;
export function sharedBenchFleet(log: (line: string) => void): Promise<BenchFleet> {
  shared ??= startBenchFleet(log);
  return shared;
}
export async function stopSharedBenchFleet(): Promise<void> {
  if (shared) await (await shared).stop();
  shared = undefined;
}
