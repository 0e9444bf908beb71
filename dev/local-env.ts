/**
 * The local environment behind `vmconvoy dev` and the demo: a Temporal dev server (Web UI, persistent
 * SQLite), the S3 server, the EC2 simulator and a worker, on loopback, all state under one folder.
 * Started again on the same folder it continues the batches it had (Temporal's SQLite file, the simulator's
 * state file and the S3 objects all live there, and the ports of last time are preferred). Ports: 7233
 * (Web UI 8233), S3 7070, EC2 simulator 4566 unless given; a busy one is replaced by a free one, and said
 * so. One environment per folder (a `lock` file with the owner's pid). Writes `<stateDir>/env.json`, which
 * the CLI reads when no AWS/Temporal variables are set.
 */
import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ServiceProcess } from './process';
import { spawnService } from './process';
import { choosePort, lockStateDir } from './state-lock';
import type { S3Server, SimulatorProcess, TemporalServer } from './services';
import {
  LOCAL_ACCESS_KEY_ID,
  LOCAL_REGION,
  LOCAL_SECRET_ACCESS_KEY,
  REPO_ROOT,
  startS3Server,
  startSimulatorProcess,
  startTemporalServer,
} from './services';

export interface LocalEnvInfo {
  temporalAddress: string;
  temporalUiUrl: string;
  s3Endpoint: string;
  ec2Endpoint: string;
  bucket: string;
  simControlUrl: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface LocalEnvPorts {
  temporal?: number;
  ui?: number;
  s3?: number;
  ec2?: number;
}

export interface LocalEnvOptions {
  stateDir: string;
  /** Start a worker process too. @default true */
  worker?: boolean;
  /**
   * Preferred ports, each taken when free, else any free port (and said so). `0` = any free port.
   * @default the ports this stateDir used last time (its env.json), else 7233, 8233, 7070, 4566
   */
  ports?: LocalEnvPorts;
  /** Simulator config (speed, limits, faults). */
  simConfig?: unknown;
  /** Extra environment for the worker process (e.g. AWS_ENDPOINT_URL_S3 through a proxy, VMCONVOY_LOG_LEVEL). */
  workerEnv?: NodeJS.ProcessEnv;
  /**
   * The worker's entry file. @default worker/main.ts of this checkout (the chaos suite's mutation check
   * runs a deliberately broken copy).
   */
  workerEntry?: string;
  /**
   * Folders the worker may read images and user-data files from (VMCONVOY_IMAGE_ROOTS): a worker without
   * roots refuses to start. @default $VMCONVOY_IMAGE_ROOTS if set, else localImageRoots()
   */
  imageRoots?: string[];
  log?: (line: string) => void;
}

/**
 * The local environment's own image roots: the examples of this checkout (the demo), the current folder
 * (an inventory being tried out) and the system's temporary folder (the tests' and scratch images).
 */
export function localImageRoots(env: NodeJS.ProcessEnv = process.env): string[] {
  const given = env.VMCONVOY_IMAGE_ROOTS?.split(':').filter(Boolean);
  if (given && given.length > 0) return given;
  return [...new Set([path.join(REPO_ROOT, 'examples'), process.cwd(), os.tmpdir()])];
}

/** A service of the local environment that can be restarted alone (same port, same state). */
export type LocalService = 'temporal' | 's3' | 'sim';

export interface LocalEnv {
  info: LocalEnvInfo;
  /** The folder holding every service's state and log (absolute). */
  stateDir: string;
  /** The worker child process, when one was started. */
  worker(): ServiceProcess | undefined;
  /** The same, as a property (the current process: it changes when the worker is restarted). */
  readonly workerProcess: ServiceProcess | undefined;
  /** Stops the worker first (it finishes its in-flight tasks), then the simulator, S3 and Temporal. */
  stop(): Promise<void>;
  /**
   * Stops the worker (if running) and starts a new one with the same settings; `workerEnv`, when given,
   * replaces the extra environment for this and later starts.
   */
  restartWorker(workerEnv?: NodeJS.ProcessEnv): Promise<void>;
  /** Stops one server and starts it again on the same port with the same state (a crash + restart). */
  restartService(service: LocalService): Promise<void>;
  /** SIGKILL of the worker, as a crash would; `restartWorker()` brings one back. */
  killWorker(): Promise<void>;
  /** Process IDs of the servers now (they change on restart), for resource accounting. */
  servicePids(): Record<LocalService, number | undefined>;
}

/** A stateDir's env.json (written by `startLocalEnv`), or undefined when there is none or it is unreadable. */
export async function readEnvFile(file: string): Promise<LocalEnvInfo | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const info = JSON.parse(text) as Partial<LocalEnvInfo>;
    const keys: Array<keyof LocalEnvInfo> = [
      'temporalAddress',
      'temporalUiUrl',
      's3Endpoint',
      'ec2Endpoint',
      'bucket',
      'simControlUrl',
      'region',
      'accessKeyId',
      'secretAccessKey',
    ];
    return keys.every((k) => typeof info[k] === 'string') ? (info as LocalEnvInfo) : undefined;
  } catch {
    return undefined;
  }
}

function portOf(address: string | undefined): number | undefined {
  const match = /:(\d+)(?:\/|$)/.exec(address ?? '');
  return match ? Number(match[1]) : undefined;
}

/**
 * The ports to try: explicit ones first, else the ones this stateDir used last time (so batches in flight,
 * whose manifests hold presigned URLs of that S3 endpoint, continue after a restart), else the defaults.
 */
function preferredPorts(
  explicit: LocalEnvPorts | undefined,
  previous: LocalEnvInfo | undefined
): Required<LocalEnvPorts> {
  const defaults = {
    temporal: portOf(previous?.temporalAddress) ?? 7233,
    ui: portOf(previous?.temporalUiUrl) ?? 8233,
    s3: portOf(previous?.s3Endpoint) ?? 7070,
    ec2: portOf(previous?.ec2Endpoint) ?? 4566,
  };
  return {
    temporal: explicit?.temporal ?? defaults.temporal,
    ui: explicit?.ui ?? defaults.ui,
    s3: explicit?.s3 ?? defaults.s3,
    ec2: explicit?.ec2 ?? defaults.ec2,
  };
}

/** The environment a worker or the CLI needs to use this local environment. */
export function envVarsFor(info: LocalEnvInfo): NodeJS.ProcessEnv {
  return {
    TEMPORAL_ADDRESS: info.temporalAddress,
    VMCONVOY_TEMPORAL_UI: info.temporalUiUrl,
    AWS_REGION: info.region,
    AWS_ENDPOINT_URL_EC2: info.ec2Endpoint,
    AWS_ENDPOINT_URL_S3: info.s3Endpoint,
    AWS_ACCESS_KEY_ID: info.accessKeyId,
    AWS_SECRET_ACCESS_KEY: info.secretAccessKey,
    VMCONVOY_BUCKET: info.bucket,
    // A real AWS session token in the caller's environment must not ride along with the local keys.
    AWS_SESSION_TOKEN: '',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

export async function startLocalEnv(opts: LocalEnvOptions): Promise<LocalEnv> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const stateDir = path.resolve(opts.stateDir);
  const envFile = path.join(stateDir, 'env.json');
  const ports = preferredPorts(opts.ports, await readEnvFile(envFile));
  await mkdir(stateDir, { recursive: true });
  const unlock = await lockStateDir(stateDir);
  const started: Array<{ stop(): Promise<void> }> = [{ stop: unlock }];
  try {
    const temporal: TemporalServer = await startTemporalServer({
      port: await choosePort(ports.temporal, 'Temporal', log),
      uiPort: await choosePort(ports.ui, 'Temporal Web UI', log),
      dbFile: path.join(stateDir, 'temporal.db'),
      logFile: path.join(stateDir, 'temporal.log'),
    });
    started.push(temporal);
    const s3: S3Server = await startS3Server({
      dir: path.join(stateDir, 's3'),
      port: await choosePort(ports.s3, 'S3', log),
      logFile: path.join(stateDir, 's3.log'),
    });
    started.push(s3);
    let configFile: string | undefined;
    if (opts.simConfig !== undefined) {
      configFile = path.join(stateDir, 'sim-config.json');
      await writeFile(configFile, JSON.stringify(opts.simConfig));
    }
    const sim: SimulatorProcess = await startSimulatorProcess({
      stateFile: path.join(stateDir, 'sim-state.json'),
      port: await choosePort(ports.ec2, 'EC2 simulator', log),
      configFile,
      logFile: path.join(stateDir, 'sim.log'),
    });
    started.push(sim);
    const info: LocalEnvInfo = {
      temporalAddress: temporal.address,
      temporalUiUrl: temporal.uiUrl,
      s3Endpoint: s3.endpoint,
      ec2Endpoint: sim.endpoint,
      bucket: 'vmconvoy',
      simControlUrl: sim.controlUrl,
      region: LOCAL_REGION,
      accessKeyId: LOCAL_ACCESS_KEY_ID,
      secretAccessKey: LOCAL_SECRET_ACCESS_KEY,
    };
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: LOCAL_REGION,
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      credentials: { accessKeyId: LOCAL_ACCESS_KEY_ID, secretAccessKey: LOCAL_SECRET_ACCESS_KEY },
    });
    await client
      .send(new HeadBucketCommand({ Bucket: info.bucket }))
      .catch(() => client.send(new CreateBucketCommand({ Bucket: info.bucket })))
      .catch((err: unknown) => {
        // Created meanwhile (or the HEAD failed for another reason and the bucket was there all along).
        if ((err as { name?: string }).name !== 'BucketAlreadyOwnedByYou') throw err;
      })
      .finally(() => client.destroy());
    await writeFile(envFile, `${JSON.stringify(info, null, 2)}\n`);

    let worker: ServiceProcess | undefined;
    let workerEnv = opts.workerEnv ?? {};
    const imageRoots = opts.imageRoots ?? localImageRoots();
    const startWorker = async (): Promise<void> => {
      // The worker entry itself (what `vmconvoy worker` runs), as one process: killWorker() must kill the
      // real worker, and a SIGKILL of the bin wrapper would leave its child running.
      worker = await spawnService({
        name: 'worker',
        command: process.execPath,
        args: ['--import', 'tsx', opts.workerEntry ?? path.join(REPO_ROOT, 'worker', 'main.ts')],
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          ...envVarsFor(info),
          VMCONVOY_LOG_FORMAT: 'json',
          VMCONVOY_ENV_FILE: envFile,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          VMCONVOY_IMAGE_ROOTS: imageRoots.join(':'),
          ...workerEnv,
        },
        logFile: path.join(stateDir, 'worker.log'),
        readyWhen: (line) => line.includes('vmconvoy worker started'),
        readyTimeoutMs: 120_000,
      });
    };
    if (opts.worker !== false) {
      await startWorker();
      log(`the worker reads images and user-data files only under ${imageRoots.join(', ')} (VMCONVOY_IMAGE_ROOTS)`);
    }
    return {
      info,
      stateDir,
      worker: () => worker,
      get workerProcess() {
        return worker;
      },
      restartWorker: async (env?: NodeJS.ProcessEnv) => {
        if (env) workerEnv = env;
        await worker?.stop();
        await startWorker();
      },
      restartService: async (service: LocalService) => {
        await { temporal, s3, sim }[service].restart();
      },
      killWorker: async () => {
        await worker?.kill();
      },
      servicePids: () => ({
        temporal: temporal.process?.child.pid,
        s3: s3.process.child.pid,
        sim: sim.process.child.pid,
      }),
      stop: async () => {
        await worker?.stop();
        for (const service of [...started].reverse()) await service.stop();
      },
    };
  } catch (err) {
    for (const service of [...started].reverse()) await service.stop().catch(() => undefined);
    throw err;
  }
}

export function describeLocalEnv(info: LocalEnvInfo, stateDir: string): string {
  return [
    `Temporal       ${info.temporalAddress}`,
    `Temporal UI    ${info.temporalUiUrl}`,
    `S3             ${info.s3Endpoint} (bucket ${info.bucket})`,
    `EC2 simulator  ${info.ec2Endpoint} (control ${info.simControlUrl})`,
    `state          ${stateDir} (env.json: the CLI uses it when AWS_*/TEMPORAL_* are unset)`,
  ].join('\n');
}
