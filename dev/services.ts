/**
 * The local environment's servers, each a real process on loopback: the Temporal dev server (with its
 * Web UI), the versitygw S3 server and the EC2 VM-Import simulator. Used by `vmconvoy dev`, the demo,
 * the test harness and the benchmarks, so all of them run the same code paths.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { SEARCH_ATTRIBUTE_NAMES } from '../workflows/search-attributes';
import type { ServiceProcess } from './process';
import { freePort, spawnService } from './process';
import { resolveTemporalCli, resolveVersitygw } from './tools';

export const REPO_ROOT = path.resolve(__dirname, '..');

/** Throwaway credentials of the local servers (never real AWS credentials). */
export const LOCAL_ACCESS_KEY_ID = 'vmconvoy-local';
export const LOCAL_SECRET_ACCESS_KEY = 'vmconvoy-local-secret';
export const LOCAL_REGION = 'us-east-1';

export interface TemporalServer {
  address: string;
  uiUrl: string;
  namespace: string;
  /** The server process; absent when the SDK runs a downloaded server in-process. */
  process: ServiceProcess | undefined;
  stop(): Promise<void>;
  /** Restart with the same ports and database (needs `dbFile`). */
  restart(): Promise<void>;
}

/**
 * Dynamic configuration every local server gets, the same settings deploy/temporal/dynamicconfig/vmconvoy.yaml
 * gives the cluster. matching.enableFairness: the AWS API budget is the AWS API queue's per-fairness-key rate
 * limit (client/aws-api-budget.ts), which Temporal 1.29 enforces only on queues with fairness on; without it
 * the limit is stored and reported but not applied.
 */
export const TEMPORAL_DYNAMIC_CONFIG_ARGS = ['--dynamic-config-value', 'matching.enableFairness=true'];

export interface StartTemporalOptions {
  port?: number;
  uiPort?: number;
  /** SQLite file; omitted = in memory. Its folder is created. */
  dbFile?: string;
  namespace?: string;
  logFile?: string;
  extraArgs?: string[];
}

export async function startTemporalServer(opts: StartTemporalOptions = {}): Promise<TemporalServer> {
  const cli = await resolveTemporalCli();
  const port = opts.port ?? (await freePort());
  const uiPort = opts.uiPort ?? (await freePort());
  const namespace = opts.namespace ?? 'default';
  if (!cli) return startDownloadedTemporalServer(port, uiPort, namespace, opts);
  if (opts.dbFile) await mkdir(path.dirname(opts.dbFile), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--namespace',
    namespace,
    '--log-level',
    'error',
    // SQLite's defaults (rollback journal, fsync on every commit) made the server ~3.5× slower here than in
    // memory: 150 workflows × 8 activities took 64 s instead of 18 s. WAL with synchronous=NORMAL keeps
    // every commit across a crash of the server process (the chaos suite kills and restarts it); only an
    // OS crash or power loss can lose the last transactions, acceptable for a local environment.
    ...(opts.dbFile
      ? ['--db-filename', opts.dbFile, '--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal']
      : []),
    ...SEARCH_ATTRIBUTE_NAMES.flatMap((name) => ['--search-attribute', `${name}=Keyword`]),
    ...TEMPORAL_DYNAMIC_CONFIG_ARGS,
    ...(opts.extraArgs ?? []),
  ];
  const launch = (): Promise<ServiceProcess> =>
    spawnService({
      name: 'temporal',
      command: cli.path,
      args,
      logFile: opts.logFile,
      readyPort: port,
      readyTimeoutMs: 60_000,
    });
  const server: TemporalServer = {
    address: `127.0.0.1:${port}`,
    uiUrl: `http://127.0.0.1:${uiPort}`,
    namespace,
    process: await launch(),
    stop: async () => {
      await server.process?.stop();
    },
    restart: async () => {
      await server.process?.stop();
      server.process = await launch();
    },
  };
  return server;
}

/**
 * Last resort, for machines with internet but neither a Temporal CLI nor Go: the SDK downloads the CLI
 * itself. That server lives inside this process (no restart).
 */
async function startDownloadedTemporalServer(
  port: number,
  uiPort: number,
  namespace: string,
  opts: StartTemporalOptions
): Promise<TemporalServer> {
  process.stderr.write(
    '[vmconvoy] no Temporal CLI found and no Go to build it: letting the Temporal SDK download one\n'
  );
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const { SearchAttributeType } = await import('@temporalio/common');
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      ip: '127.0.0.1',
      port,
      ui: true,
      uiPort,
      namespace,
      dbFilename: opts.dbFile,
      searchAttributes: SEARCH_ATTRIBUTE_NAMES.map((name) => ({ name, type: SearchAttributeType.KEYWORD })),
      extraArgs: [...TEMPORAL_DYNAMIC_CONFIG_ARGS, ...(opts.extraArgs ?? [])],
    },
  });
  return {
    address: env.address,
    uiUrl: `http://127.0.0.1:${uiPort}`,
    namespace,
    process: undefined,
    stop: () => env.teardown(),
    restart: () =>
      Promise.reject(new Error('a server downloaded by the SDK cannot be restarted; install the Temporal CLI')),
  };
}

export interface S3Server {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  dataDir: string;
  process: ServiceProcess;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

export interface StartS3Options {
  /** Objects live under DIR/data, IAM state under DIR/iam. */
  dir: string;
  port?: number;
  logFile?: string;
  /** The Region it serves (S3 refuses requests signed for another). @default LOCAL_REGION */
  region?: string;
}

/** versitygw with the posix backend: real SigV4 and presigned-URL checks, objects as plain files. */
export async function startS3Server(opts: StartS3Options): Promise<S3Server> {
  const gw = await resolveVersitygw();
  if (!gw) {
    throw new Error(
      'No S3 server: set VERSITYGW, put `versitygw` on PATH, or install Go >= 1.25 so vmconvoy can build it ' +
        '(go install github.com/versity/versitygw/cmd/versitygw@v1.7.0).'
    );
  }
  const port = opts.port ?? (await freePort());
  const dataDir = path.join(opts.dir, 'data');
  const iamDir = path.join(opts.dir, 'iam');
  await mkdir(dataDir, { recursive: true });
  await mkdir(iamDir, { recursive: true });
  const launch = (): Promise<ServiceProcess> =>
    spawnService({
      name: 'versitygw',
      command: gw.path,
      args: ['--port', `127.0.0.1:${port}`, '--quiet', 'posix', dataDir],
      env: {
        ...process.env,
        ROOT_ACCESS_KEY: LOCAL_ACCESS_KEY_ID,
        ROOT_SECRET_KEY: LOCAL_SECRET_ACCESS_KEY,
        VGW_REGION: opts.region ?? LOCAL_REGION,
      },
      logFile: opts.logFile,
      readyPort: port,
    });
  const server: S3Server = {
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId: LOCAL_ACCESS_KEY_ID,
    secretAccessKey: LOCAL_SECRET_ACCESS_KEY,
    region: opts.region ?? LOCAL_REGION,
    dataDir,
    process: await launch(),
    stop: () => server.process.stop(),
    restart: async () => {
      await server.process.stop();
      server.process = await launch();
    },
  };
  return server;
}

export interface SimulatorProcess {
  endpoint: string;
  controlUrl: string;
  process: ServiceProcess;
  stop(): Promise<void>;
  /** Restart on the same port with the same state file. */
  restart(): Promise<void>;
}

export interface StartSimulatorOptions {
  stateFile?: string;
  port?: number;
  logFile?: string;
  /** JSON config file passed with --config (limits, faults, speed). */
  configFile?: string;
}

/** The EC2 simulator as a child process, started exactly as `vmconvoy sim` starts it. */
export async function startSimulatorProcess(opts: StartSimulatorOptions = {}): Promise<SimulatorProcess> {
  const port = opts.port ?? (await freePort());
  const args = [
    '--import',
    'tsx',
    path.join(REPO_ROOT, 'sim', 'main.ts'),
    '--port',
    String(port),
    '--access-key',
    LOCAL_ACCESS_KEY_ID,
    '--secret-key',
    LOCAL_SECRET_ACCESS_KEY,
    '--region',
    LOCAL_REGION,
    ...(opts.stateFile ? ['--state', opts.stateFile] : []),
    ...(opts.configFile ? ['--config', opts.configFile] : []),
  ];
  const launch = (): Promise<ServiceProcess> =>
    spawnService({
      name: 'ec2-simulator',
      command: process.execPath,
      args,
      cwd: REPO_ROOT,
      logFile: opts.logFile,
      readyWhen: (line) => line.includes('EC2 simulator listening on'),
    });
  const endpoint = `http://127.0.0.1:${port}`;
  const sim: SimulatorProcess = {
    endpoint,
    controlUrl: `${endpoint}/_sim`,
    process: await launch(),
    stop: () => sim.process.stop(),
    restart: async () => {
      await sim.process.stop();
      sim.process = await launch();
    },
  };
  return sim;
}
