/**
 * The production topology for a test or a benchmark: the Temporal cluster (dev/cluster.ts), the S3
 * server, the EC2 simulator, and vmconvoy worker processes as an operator runs them: shared workers
 * (workflows and the shared queues) and one worker per site (`vmconvoy worker --site`), each with its
 * own image root and, for a site, its own uplink to S3 (a counting proxy, so the bytes a crash makes a
 * site send again are measured at the wire).
 */
import { Client, Connection } from '@temporalio/client';
import { chmod, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Cluster } from '../../dev/cluster';
import { startCluster } from '../../dev/cluster';
import type { ServiceProcess } from '../../dev/process';
import { spawnService } from '../../dev/process';
import { REPO_ROOT } from '../../dev/services';
import { baseEnv } from '../e2e/run-cli';
import type { CountingProxy } from '../helpers/counting-proxy';
import { startCountingProxy } from '../helpers/counting-proxy';
import type { TestS3, TestSim } from '../helpers/testbed';
import { startS3, startSim } from '../helpers/testbed';

export interface WorkerSpec {
  /** `shared` or the site's name. */
  site: string | undefined;
  imageRoot: string;
}

export interface RunningWorker {
  /** `shared-1`, `shared-2`, `dc1`... */
  name: string;
  spec: WorkerSpec;
  process: ServiceProcess;
  logFile: string;
  /** Every pid this worker slot has had (a restart is a new process), for the history and CPU checks. */
  pids: number[];
}

export interface ClusterBed {
  dir: string;
  cluster: Cluster;
  s3: TestS3;
  sim: TestSim;
  connection: Connection;
  client: Client;
  /** The operator's environment: the CLI and every worker (a site worker's S3 endpoint is its uplink). */
  env: NodeJS.ProcessEnv;
  /** Per site: the uplink every upload of that site goes through. */
  uplinks: Map<string, CountingProxy>;
  workers: Map<string, RunningWorker>;
  /** Starts a worker process (a site worker when `spec.site` is set) under `name`, ready when it polls. */
  startWorker(name: string, spec: WorkerSpec): Promise<RunningWorker>;
  /** SIGKILL, as a crashed host. */
  killWorker(name: string): Promise<void>;
  /** Starts the worker of `name` again, same spec (after a kill). */
  restartWorker(name: string): Promise<RunningWorker>;
  stop(): Promise<void>;
}

export interface BedOptions {
  dir: string;
  sites: string[];
  /** Each site's uplink to S3 in bytes per second (unset: loopback speed). */
  uplinkBytesPerSecond?: number;
  simConfig: unknown;
  /** Server log level. @default warn */
  logLevel?: string;
  log: (line: string) => void;
}

export async function startClusterBed(opts: BedOptions): Promise<ClusterBed> {
  const t0 = Date.now();
  // PostgreSQL may run as another user (dev/postgres.ts), who must pass through this folder to reach the
  // cluster's (a temporary folder is 0700): traverse only, no listing.
  await chmod(opts.dir, ((await stat(opts.dir)).mode & 0o777) | 0o001);
  const cluster = await startCluster({ dir: path.join(opts.dir, 'cluster'), log: opts.log, logLevel: opts.logLevel });
  opts.log(
    `cluster started in ${((Date.now() - t0) / 1000).toFixed(1)} s (frontend ${cluster.address}, UI ${cluster.uiUrl}, PostgreSQL ${cluster.pg.port})`
  );
  const cleanups: Array<() => Promise<unknown>> = [() => cluster.stop()];
  try {
    const [s3, sim] = await Promise.all([startS3(), startSim({ config: opts.simConfig })]);
    cleanups.push(
      () => s3.stop(),
      () => sim.stop()
    );
    const uplinks = new Map<string, CountingProxy>();
    for (const site of opts.sites) {
      const proxy = await startCountingProxy(s3.endpoint, { bytesPerSecond: opts.uplinkBytesPerSecond });
      uplinks.set(site, proxy);
      cleanups.push(() => proxy.close());
    }
    const connection = await Connection.connect({ address: cluster.address });
    cleanups.push(() => connection.close());
    const client = new Client({ connection, namespace: cluster.namespace });
    const env = baseEnv({
      TEMPORAL_ADDRESS: cluster.address,
      TEMPORAL_NAMESPACE: cluster.namespace,
      AWS_REGION: s3.region,
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ENDPOINT_URL_EC2: sim.endpoint,
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_SESSION_TOKEN: '',
      VMCONVOY_BUCKET: s3.bucket,
      VMCONVOY_ENV_FILE: path.join(opts.dir, 'no-env.json'),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    const workers = new Map<string, RunningWorker>();

    const startWorker = async (name: string, spec: WorkerSpec): Promise<RunningWorker> => {
      const logFile = path.join(opts.dir, `worker-${name}.log`);
      const uplink = spec.site ? uplinks.get(spec.site) : undefined;
      if (spec.site && !uplink) throw new Error(`no uplink for site ${spec.site}`);
      const proc = await spawnService({
        name: `worker-${name}`,
        command: process.execPath,
        // client/main.ts itself, not bin/vmconvoy.js: that wrapper runs it as a child, so a SIGKILL of the
        // wrapper would crash nothing (the worker would live on, orphaned) and the pid would not be the
        // worker's, which the histories' identities and the CPU accounting need.
        args: [
          '--import',
          'tsx',
          path.join(REPO_ROOT, 'client', 'main.ts'),
          'worker',
          '--log-format',
          'json',
          ...(spec.site ? ['--site', spec.site] : []),
        ],
        cwd: REPO_ROOT,
        env: {
          ...env,
          VMCONVOY_IMAGE_ROOTS: spec.imageRoot,
          ...(uplink ? { AWS_ENDPOINT_URL_S3: uplink.endpoint } : {}),
        },
        logFile,
        readyWhen: (line) => line.includes('vmconvoy worker started'),
        readyTimeoutMs: 180_000,
      });
      const before = workers.get(name);
      const running: RunningWorker = {
        name,
        spec,
        process: proc,
        logFile,
        pids: [...(before?.pids ?? []), proc.child.pid!],
      };
      workers.set(name, running);
      return running;
    };

    return {
      dir: opts.dir,
      cluster,
      s3,
      sim,
      connection,
      client,
      env,
      uplinks,
      workers,
      startWorker,
      killWorker: async (name) => {
        await workers.get(name)?.process.kill();
      },
      restartWorker: async (name) => {
        const w = workers.get(name);
        if (!w) throw new Error(`no worker ${name}`);
        await w.process.kill();
        return startWorker(name, w.spec);
      },
      stop: async () => {
        await Promise.all([...workers.values()].map((w) => w.process.stop(20_000).catch(() => undefined)));
        for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
      },
    };
  } catch (err) {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    throw err;
  }
}
