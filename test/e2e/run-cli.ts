/** Runs the `vmconvoy` binary as a user would, capturing its output (shared by the e2e tests). */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../../dev/services';
import type { ServiceProcess } from '../../dev/process';
import { spawnService } from '../../dev/process';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import { uniqueTaskQueue } from '../helpers/testbed';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export const VMCONVOY_BIN = path.join(REPO_ROOT, 'bin', 'vmconvoy.js');

export function runCli(args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VMCONVOY_BIN, ...args], { env, cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/**
 * `vmconvoy worker` as an operator runs it, in `dir` (its log in `worker[-name].log`), ready once it says so.
 * `extraEnv` adds the worker-only settings (notify secret and receivers, a site).
 */
export function spawnCliWorker(
  env: NodeJS.ProcessEnv,
  dir: string,
  opts: { name?: string; args?: string[]; extraEnv?: NodeJS.ProcessEnv } = {}
): Promise<ServiceProcess> {
  const name = opts.name ? `worker-${opts.name}` : 'worker';
  return spawnService({
    name,
    command: process.execPath,
    args: [VMCONVOY_BIN, 'worker', '--log-format', 'json', ...(opts.args ?? [])],
    cwd: REPO_ROOT,
    env: { ...env, ...opts.extraEnv },
    logFile: path.join(dir, `${name}.log`),
    readyWhen: (line) => line.includes('vmconvoy worker started'),
    readyTimeoutMs: 120_000,
  });
}

/** The variables every run needs besides the vmconvoy ones (quiet, no colours, no env.json). */
export function baseEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NO_COLOR: '1',
    ...extra,
  };
}

export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  intervalMs = 250
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * The environment an operator's shell has for the test bed: Temporal, S3 and the simulator, a task queue of
 * its own, images read only from `dir`, and no env.json picked up. `extra` adds or overrides variables.
 */
export function testbedEnv(
  bed: { temporal: TestTemporal; s3: TestS3; sim: TestSim; dir: string },
  queue: string,
  extra: NodeJS.ProcessEnv = {}
): NodeJS.ProcessEnv {
  const { temporal, s3, sim, dir } = bed;
  return baseEnv({
    TEMPORAL_ADDRESS: temporal.address,
    VMCONVOY_TASK_QUEUE: uniqueTaskQueue(queue),
    AWS_REGION: s3.region,
    AWS_ENDPOINT_URL_EC2: sim.endpoint,
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    VMCONVOY_BUCKET: s3.bucket,
    VMCONVOY_ENV_FILE: path.join(dir, 'no-env.json'),
    VMCONVOY_IMAGE_ROOTS: dir,
    ...extra,
  });
}
