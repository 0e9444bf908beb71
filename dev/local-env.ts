/**
 * The local environment behind `vmconvoy dev` and the demo: a Temporal dev server (Web UI, persistent
 * SQLite), the S3 server, the EC2 simulator and a worker, on loopback, all state under one folder.
 * Started again on the same folder it continues the batches it had. Writes `<stateDir>/env.json`, which
 * the CLI reads when no AWS/Temporal variables are set.
 */
import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { ServiceProcess } from './process';
import { freePort, spawnService } from './process';
import type { S3Server, SimulatorProcess, TemporalServer } from './services';
import { LOCAL_ACCESS_KEY_ID, LOCAL_REGION, LOCAL_SECRET_ACCESS_KEY, REPO_ROOT, startS3Server, startSimulatorProcess, startTemporalServer } from './services';

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

export interface LocalEnvOptions {
  stateDir: string;
  /** Start a worker process too. @default true */
  worker?: boolean;
  /** Preferred ports (taken when free, else any free port). @default 7233, 8233, 7070, 4566 */
  ports?: { temporal?: number; ui?: number; s3?: number; ec2?: number };
  /** Simulator config (speed, limits, faults). */
  simConfig?: unknown;
  log?: (line: string) => void;
}

export interface LocalEnv {
  info: LocalEnvInfo;
  stop(): Promise<void>;
  restartWorker(): Promise<void>;
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function choosePort(preferred: number | undefined, label: string, log: (l: string) => void): Promise<number> {
  if (preferred && (await portIsFree(preferred))) return preferred;
  const port = await freePort();
  if (preferred) log(`${label}: port ${preferred} is busy, using ${port}`);
  return port;
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
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

export async function startLocalEnv(opts: LocalEnvOptions): Promise<LocalEnv> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const ports = { temporal: 7233, ui: 8233, s3: 7070, ec2: 4566, ...opts.ports };
  const stateDir = path.resolve(opts.stateDir);
  const started: Array<{ stop(): Promise<void> }> = [];
  try {
    const temporal: TemporalServer = await startTemporalServer({
      port: await choosePort(ports.temporal, 'Temporal', log),
      uiPort: await choosePort(ports.ui, 'Temporal Web UI', log),
      dbFile: path.join(stateDir, 'temporal.db'),
      logFile: path.join(stateDir, 'temporal.log'),
    });
    started.push(temporal);
    const s3: S3Server = await startS3Server({ dir: path.join(stateDir, 's3'), port: await choosePort(ports.s3, 'S3', log), logFile: path.join(stateDir, 's3.log') });
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
    await client.send(new HeadBucketCommand({ Bucket: info.bucket })).catch(() => client.send(new CreateBucketCommand({ Bucket: info.bucket })));
    client.destroy();
    await writeFile(path.join(stateDir, 'env.json'), JSON.stringify(info, null, 2));

    let worker: ServiceProcess | undefined;
    const startWorker = async (): Promise<void> => {
      worker = await spawnService({
        name: 'worker',
        command: process.execPath,
        args: ['--import', 'tsx', path.join(REPO_ROOT, 'worker', 'main.ts')],
        cwd: REPO_ROOT,
        env: { ...process.env, ...envVarsFor(info), VMCONVOY_LOG_FORMAT: 'json' },
        logFile: path.join(stateDir, 'worker.log'),
        readyWhen: (line) => line.includes('vmconvoy worker started'),
        readyTimeoutMs: 90_000,
      });
    };
    if (opts.worker !== false) await startWorker();
    return {
      info,
      restartWorker: async () => {
        await worker?.stop();
        await startWorker();
      },
      stop: async () => {
        await worker?.stop();
        for (const service of started.reverse()) await service.stop();
      },
    };
  } catch (err) {
    for (const service of started.reverse()) await service.stop().catch(() => undefined);
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
