/**
 * The test bed: real servers on free loopback ports. `scripts/run-tests.ts` starts one Temporal dev server and
 * one S3 server for the whole run and passes their addresses in the environment; a test file run alone
 * starts its own. Every test file gets a fresh bucket and its own task queue, and the EC2 simulator is
 * started per file (it is cheap, and tests configure its faults).
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, bundleWorkflowCode, Runtime, DefaultLogger } from '@temporalio/worker';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AwsConfig } from '../../common/config';
import type { SimulatorProcess, S3Server, TemporalServer } from '../../dev/services';
import {
  LOCAL_ACCESS_KEY_ID,
  LOCAL_REGION,
  LOCAL_SECRET_ACCESS_KEY,
  REPO_ROOT,
  startS3Server,
  startSimulatorProcess,
  startTemporalServer,
} from '../../dev/services';

let runtimeInstalled = false;
/** Keep the SDK quiet in test output: warnings and errors only. */
export function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // Already installed by another helper in this process.
  }
}

export async function tempDir(prefix = 'vmconvoy-test-'): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

// ---------------------------------------------------------------------------------------------------
// Temporal
// ---------------------------------------------------------------------------------------------------

export interface TestTemporal {
  address: string;
  uiUrl?: string;
  namespace: string;
  connection: Connection;
  client: Client;
  nativeConnection: NativeConnection;
  /** The server process when this file started its own (absent when shared). */
  server?: TemporalServer;
  stop(): Promise<void>;
}

export async function startTemporal(): Promise<TestTemporal> {
  installQuietRuntime();
  const shared = process.env.VMCONVOY_TEST_TEMPORAL_ADDRESS;
  const server = shared ? undefined : await startTemporalServer();
  const address = shared ?? server!.address;
  const namespace = 'default';
  const connection = await Connection.connect({ address });
  const nativeConnection = await NativeConnection.connect({ address });
  const client = new Client({ connection, namespace });
  return {
    address,
    uiUrl: shared ? process.env.VMCONVOY_TEST_TEMPORAL_UI : server!.uiUrl,
    namespace,
    connection,
    client,
    nativeConnection,
    server,
    stop: async () => {
      await nativeConnection.close();
      await connection.close();
      await server?.stop();
    },
  };
}

const bundles = new Map<string, Promise<WorkflowBundleWithSourceMap>>();
/**
 * A workflow bundle, built once per test process and entry file (webpack takes seconds). Default: the
 * product's workflows; tests that need extra test-only workflows pass `test/helpers/test-workflows.ts`.
 */
export function workflowBundle(
  entry = path.join(REPO_ROOT, 'workflows', 'index.ts')
): Promise<WorkflowBundleWithSourceMap> {
  let bundle = bundles.get(entry);
  if (!bundle) {
    bundle = bundleWorkflowCode({ workflowsPath: entry, logger: new DefaultLogger('WARN') });
    bundles.set(entry, bundle);
  }
  return bundle;
}

/** A task queue unique to this test, so tests sharing a server never pick up each other's tasks. */
export function uniqueTaskQueue(label: string): string {
  return `test-${label.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 40)}-${randomBytes(4).toString('hex')}`;
}

// ---------------------------------------------------------------------------------------------------
// S3
// ---------------------------------------------------------------------------------------------------

export interface TestS3 {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** A fresh bucket for this test file. */
  bucket: string;
  client: S3Client;
  /** The server process when this file started its own (absent when shared). */
  server?: S3Server;
  stop(): Promise<void>;
}

/** An S3 client configured the way every vmconvoy client talks to a local S3 server. */
export function localS3Client(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: LOCAL_REGION,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    credentials: { accessKeyId: LOCAL_ACCESS_KEY_ID, secretAccessKey: LOCAL_SECRET_ACCESS_KEY },
  });
}

export async function startS3(): Promise<TestS3> {
  const shared = process.env.VMCONVOY_TEST_S3_ENDPOINT;
  let dir: { dir: string; remove(): Promise<void> } | undefined;
  let server: S3Server | undefined;
  if (!shared) {
    dir = await tempDir('vmconvoy-s3-');
    server = await startS3Server({ dir: dir.dir });
  }
  const endpoint = shared ?? server!.endpoint;
  const client = localS3Client(endpoint);
  const bucket = `test-${randomBytes(6).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    endpoint,
    region: LOCAL_REGION,
    accessKeyId: LOCAL_ACCESS_KEY_ID,
    secretAccessKey: LOCAL_SECRET_ACCESS_KEY,
    bucket,
    client,
    server,
    stop: async () => {
      client.destroy();
      await server?.stop();
      await dir?.remove();
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// EC2 simulator
// ---------------------------------------------------------------------------------------------------

export interface StartSimOptions {
  /** Simulator config (limits, faults, speed) applied at start through --config. */
  config?: unknown;
  /** Judge images by their content as EC2 does (guest images only). @default false */
  judgeContent?: boolean;
  stateFile?: string;
}

export interface TestSim extends SimulatorProcess {
  /** The AWS account the simulator's own key belongs to: this simulator's alone (see startSim). */
  accountId: string;
  /** POST /_sim/config with a partial config. */
  configure(config: unknown): Promise<unknown>;
  /** GET /_sim/state. */
  state(): Promise<SimState>;
}

/** `GET /_sim/state` (sim/state-view.ts). */
export interface SimState {
  tasks: Array<{
    id: string;
    state: string;
    statusMessage: string;
    manifestUrl: string;
    bytes: number;
    bytesConverted: number;
    instanceId?: string;
    volumeId: string;
  }>;
  instances: Array<{
    instanceId: string;
    state: string;
    instanceType: string;
    architecture: string;
    platform?: string;
    tags: Record<string, string>;
  }>;
  volumes: Array<{
    volumeId: string;
    sizeGib: number;
    state: string;
    instanceId?: string;
    tags: Record<string, string>;
  }>;
  calls: Record<string, number>;
  /** Calls refused by a token bucket (RequestLimitExceeded), by action. */
  throttled: Record<string, number>;
}

/**
 * The tests' images (test/helpers/images.ts) are containers of random bytes, not guests: the simulator judges
 * no content for them unless a test asks (`judgeContent: true`, with images from guest-images.ts).
 */
export const RANDOM_IMAGES = { judge: { content: false } } as const;

/** A 12-digit AWS account ID no other simulator of this run has. */
export function uniqueAccountId(): string {
  return String(randomInt(1e11, 1e12 - 1));
}

export async function startSim(opts: StartSimOptions = {}): Promise<TestSim> {
  const dir = await tempDir('vmconvoy-sim-');
  const configFile = path.join(dir.dir, 'sim-config.json');
  const given = (opts.config ?? {}) as Record<string, unknown>;
  // Its own account: a conversion quota is per account and Region (vmconvoy-quota/<account>/<region>), and
  // test files share one Temporal server, so simulators sharing the default account would share one quota
  // workflow, running on the task queue of whichever file started it (and stalling every other file's VMs
  // once that file's worker is gone).
  const accounts = (given.accounts ?? {}) as Record<string, unknown>;
  const accountId = typeof accounts.defaultAccountId === 'string' ? accounts.defaultAccountId : uniqueAccountId();
  const config = { ...given, accounts: { ...accounts, defaultAccountId: accountId } };
  await writeFile(configFile, JSON.stringify(opts.judgeContent ? config : { ...RANDOM_IMAGES, ...config }));
  const sim = await startSimulatorProcess({
    stateFile: opts.stateFile ?? path.join(dir.dir, 'sim-state.json'),
    configFile,
  });
  return Object.assign(sim, {
    accountId,
    stop: async () => {
      await sim.process.stop();
      await dir.remove();
    },
    configure: async (config: unknown) => {
      const res = await fetch(`${sim.controlUrl}/config`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(config),
      });
      if (!res.ok) throw new Error(`simulator config rejected: ${res.status} ${await res.text()}`);
      return res.json();
    },
    state: async () => {
      const res = await fetch(`${sim.controlUrl}/state`);
      if (!res.ok) throw new Error(`simulator state: ${res.status}`);
      return (await res.json()) as SimState;
    },
  });
}

/** The AwsConfig a worker uses against the local S3 server and simulator. */
export function localAwsConfig(s3: TestS3, sim?: { endpoint: string }): AwsConfig {
  return {
    region: LOCAL_REGION,
    ec2Endpoint: sim?.endpoint,
    s3Endpoint: s3.endpoint,
    bucket: s3.bucket,
    keyPrefix: 'vmconvoy/',
    accessKeyId: LOCAL_ACCESS_KEY_ID,
    secretAccessKey: LOCAL_SECRET_ACCESS_KEY,
    maxAttempts: 3,
  };
}
