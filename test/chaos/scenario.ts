/**
 * One chaos run: a fleet on the local environment (dev/local-env.ts: Temporal dev server with a persistent
 * database, versitygw, the EC2 simulator, a worker process), started with the real `vmconvoy` binary,
 * while the driver kills the worker and restarts every server, and the simulator throttles and fails calls.
 * Then every check of checks.ts. Uploads go through a counting proxy, so re-sent bytes are measured at the
 * wire whatever the uploader believes.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { quotaWorkflowIdFor } from '../../client/settings';
import type { LocalEnv } from '../../dev/local-env';
import { envVarsFor, startLocalEnv } from '../../dev/local-env';
import { freePort } from '../../dev/process';
import { LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY } from '../../dev/services';
import { seededRandom } from '../../sim/faults/fault-injector';
import { DEFAULT_SETTINGS } from '../../common/contracts/migration';
import { baseEnv, runCli } from '../e2e/run-cli';
import type { CliRun } from '../e2e/run-cli';
import type { CountingProxy } from '../helpers/counting-proxy';
import { startCountingProxy } from '../helpers/counting-proxy';
import type { SimState } from '../helpers/testbed';
import { localS3Client, tempDir } from '../helpers/testbed';
import type { ReuploadFigures, StatusJson } from './checks';
import { checkBucket, checkConversions, checkHistories, checkLogs, checkOutcomes, checkReuploads } from './checks';
import type { Disruption, DisruptionRecord } from './disruptions';
import { runDisruptions } from './disruptions';
import { makeChaosFleet, PLANNED_FAILURE } from './fleet-inventory';

export interface ChaosOptions {
  vms: number;
  waves: number;
  /** One VM in this many fails its conversion on purpose (its expected end is Failed). */
  failEvery: number;
  imageMiB: number;
  plan: Disruption[];
  /** Simulator faults for the whole run (rates of EC2 calls). */
  faults: { seed: number; throttleRate: number; internalErrorRate: number; lostImportResponseRate: number };
  conversionBytesPerSecond: number;
  /** The site's uplink to S3 (a cap at the proxy): uploads take a while, as they do over a WAN. */
  uploadBytesPerSecond: number;
  maxUploads: number;
  maxConversions: number;
  /** Give up on the batch after this long. */
  timeoutMs: number;
  /** Seed of the driver's choices (when inside a moment, how long a host stays down). */
  seed: number;
  /** Run the worker from this entry file (the mutation check's broken copy). */
  workerEntry?: string;
  log: (line: string) => void;
}

export interface ChaosReport {
  problems: string[];
  seconds: number;
  vms: number;
  outcomes: { completed: number; failed: number; other: number };
  conversions: { tasks: number; instances: number; duplicates: number; describeCalls: number; importCalls: number };
  leftoverObjects: number;
  reuploads: ReuploadFigures;
  disruptions: DisruptionRecord[];
  secrets: { histories: number; events: number; logLines: number };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function simRequest(local: LocalEnv, route: string, body?: unknown): Promise<unknown> {
  const res = await fetch(
    `${local.info.simControlUrl}/${route}`,
    body === undefined
      ? {}
      : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
  );
  if (!res.ok) throw new Error(`simulator ${route}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** Status of the fleet workflow, retried while Temporal restarts. */
async function batchClosed(client: Client, batch: string): Promise<boolean> {
  try {
    return (await client.workflow.getHandle(batch).describe()).status.name !== 'RUNNING';
  } catch {
    return false;
  }
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const log = opts.log;
  const dir = await tempDir('vmconvoy-chaos-');
  const stateDir = path.join(dir.dir, 'state');
  const batch = `chaos-${Date.now().toString(36)}`;
  const faults = { ...opts.faults, actions: [] as string[] };
  let local: LocalEnv | undefined;
  let proxy: CountingProxy | undefined;
  let connection: Connection | undefined;
  let s3: S3Client | undefined;
  const cliRuns: Array<{ name: string; run: CliRun }> = [];
  try {
    const ports = { temporal: await freePort(), ui: await freePort(), s3: await freePort(), ec2: await freePort() };
    const [fleet, env] = await Promise.all([
      makeChaosFleet({
        dir: dir.dir,
        vms: opts.vms,
        waves: opts.waves,
        failEvery: opts.failEvery,
        imageMiB: opts.imageMiB,
      }),
      startLocalEnv({
        stateDir,
        ports,
        worker: false,
        workerEntry: opts.workerEntry,
        simConfig: {
          speed: { conversionBytesPerSecond: opts.conversionBytesPerSecond, stepSeconds: 0.5, pendingPollMs: 300 },
          faults,
        },
        log: () => undefined,
      }),
    ]);
    local = env;
    // The worker uploads through the proxy; the CLI and the checks talk to S3 directly.
    proxy = await startCountingProxy(local.info.s3Endpoint, { bytesPerSecond: opts.uploadBytesPerSecond });
    await local.restartWorker({ AWS_ENDPOINT_URL_S3: proxy.endpoint });
    const cliEnv = baseEnv({ ...envVarsFor(local.info), VMCONVOY_ENV_FILE: path.join(dir.dir, 'no-env.json') });
    const cli = async (name: string, ...args: string[]): Promise<CliRun> => {
      const run = await runCli(args, cliEnv, dir.dir);
      cliRuns.push({ name, run });
      return run;
    };
    connection = await Connection.connect({ address: local.info.temporalAddress });
    const client = new Client({ connection });
    s3 = localS3Client(local.info.s3Endpoint);
    const imageBytes = fleet.vms.reduce((sum, vm) => sum + vm.imageBytes, 0);
    log(
      `chaos: ${opts.vms} VMs (${(imageBytes / 1024 / 1024).toFixed(0)} MiB of images), batch ${batch}, state ${stateDir}`
    );

    const start = await cli(
      'start',
      'start',
      fleet.csv,
      '--batch',
      batch,
      '--max-uploads',
      String(opts.maxUploads),
      '--max-conversions',
      String(opts.maxConversions)
    );
    if (start.code !== 0) throw new Error(`vmconvoy start exited ${start.code}:\n${start.stdout}\n${start.stderr}`);

    const random = seededRandom(opts.seed);
    const partPath = new RegExp(`/${local.info.bucket}/vmconvoy/${batch}/[^/]+/image\\.part\\d+(\\?|$)`);
    const disruptions = await runDisruptions(
      {
        local,
        client,
        batch,
        total: opts.vms,
        partsInFlight: () => proxy!.putsInFlight(partPath),
        simConfigure: async (patch) => {
          await simRequest(local!, 'config', patch);
        },
        faults,
        random,
        log,
        batchClosed: () => batchClosed(client, batch),
      },
      opts.plan,
      { momentTimeoutMs: 180_000, gapMs: 4000 }
    );

    const deadline = started + opts.timeoutMs;
    while (!(await batchClosed(client, batch))) {
      if (Date.now() > deadline)
        throw new Error(`the batch did not finish within ${Math.round(opts.timeoutMs / 1000)} s`);
      await sleep(1000);
    }
    const seconds = (Date.now() - started) / 1000;
    log(`chaos: batch closed after ${seconds.toFixed(0)} s`);

    // The checks, each from the outside.
    const statusRun = await cli('status', 'status', batch, '--json');
    if (statusRun.code !== 0 && statusRun.code !== 2)
      throw new Error(`vmconvoy status exited ${statusRun.code}: ${statusRun.stderr}`);
    const status = JSON.parse(statusRun.stdout) as StatusJson;
    const expectFailures = fleet.vms.some((v) => v.expected === 'Failed');
    const problems: string[] = [];
    if (statusRun.code !== (expectFailures ? 2 : 0))
      problems.push(`vmconvoy status exited ${statusRun.code}, expected ${expectFailures ? 2 : 0}`);
    const outcomes = checkOutcomes(fleet.vms, status, PLANNED_FAILURE);
    const sim = (await simRequest(local, 'state')) as SimState;
    const conversions = checkConversions(fleet.vms, batch, sim);
    const bucket = await checkBucket(s3, local.info.bucket, 'vmconvoy/', batch);
    const reuploads = checkReuploads(proxy.puts(), partPath, disruptions, imageBytes, {
      maxUploads: opts.maxUploads,
      uploadConcurrency: DEFAULT_SETTINGS.uploadConcurrency,
      partSizeBytes: DEFAULT_SETTINGS.partSizeBytes,
    });
    const secrets = [...fleet.secrets, LOCAL_SECRET_ACCESS_KEY, LOCAL_ACCESS_KEY_ID];
    const histories = await checkHistories(
      client,
      batch,
      [quotaWorkflowIdFor({ ec2Endpoint: local.info.ec2Endpoint, region: local.info.region })],
      secrets
    );
    const workerLog = await readFile(path.join(stateDir, 'worker.log'), 'utf8');
    const logs = checkLogs(
      [
        { name: 'worker.log', text: workerLog },
        ...cliRuns.map(({ name, run }) => ({ name: `vmconvoy ${name}`, text: `${run.stdout}\n${run.stderr}` })),
      ],
      secrets
    );
    const notSeen = disruptions.filter((d) => !d.momentSeen).map((d) => `${d.kind} during ${d.during}`);
    if (disruptions.length < opts.plan.length)
      problems.push(`only ${disruptions.length} of ${opts.plan.length} disruptions happened before the batch closed`);
    if (notSeen.length > 0) problems.push(`disruptions struck outside their moment: ${notSeen.join(', ')}`);
    problems.push(
      ...outcomes.problems,
      ...conversions.problems,
      ...bucket.problems,
      ...reuploads.problems,
      ...histories.problems,
      ...logs.problems
    );
    return {
      problems,
      seconds,
      vms: opts.vms,
      outcomes: outcomes.figures,
      conversions: conversions.figures,
      leftoverObjects: bucket.figures.leftover,
      reuploads: reuploads.figures,
      disruptions,
      secrets: { ...histories.figures, logLines: logs.figures.logLines },
    };
  } finally {
    s3?.destroy();
    await connection?.close().catch(() => undefined);
    await local?.stop().catch(() => undefined);
    await proxy?.close().catch(() => undefined);
    if (!process.env.VMCONVOY_CHAOS_KEEP) await dir.remove();
    else log(`chaos: kept ${dir.dir}`);
  }
}

const MiB = 1024 * 1024;

/** The report as lines a person reads (and CI logs keep). */
export function formatReport(r: ChaosReport): string[] {
  const lines = [
    `VMs: ${r.vms} — completed ${r.outcomes.completed}, failed ${r.outcomes.failed} (as planned: the failing image), other ${r.outcomes.other}; ${r.seconds.toFixed(0)} s`,
    `conversion tasks: ${r.conversions.tasks} for ${r.vms} VMs (duplicates ${r.conversions.duplicates}); instances ${r.conversions.instances}; EC2 calls ImportInstance ${r.conversions.importCalls}, DescribeConversionTasks ${r.conversions.describeCalls}`,
    `S3 objects left for finished VMs: ${r.leftoverObjects}`,
    `bytes: images ${(r.reuploads.imageBytes / MiB).toFixed(1)} MiB, part bytes sent ${(r.reuploads.partBytesSent / MiB).toFixed(1)} MiB, sent again ${(r.reuploads.reuploadedBytes / MiB).toFixed(1)} MiB (bound per disruption ${(r.reuploads.boundBytes / MiB).toFixed(0)} MiB = uploads × lanes × part size)`,
    ...r.disruptions.map(
      (d, i) =>
        `  ${i + 1}. ${d.kind.padEnd(16)} during ${d.during.padEnd(10)} parts in flight ${String(d.partsInFlight).padStart(2)}, sent again after it ${(r.reuploads.perDisruption[i]!.reuploadedBytes / MiB).toFixed(1).padStart(5)} MiB, down ${(d.downMs / 1000).toFixed(1)} s`
    ),
    `secret scan: ${r.secrets.histories} histories (${r.secrets.events} events), ${r.secrets.logLines} log lines`,
    r.problems.length === 0
      ? 'PASS: no problem found'
      : `FAIL: ${r.problems.length} problems:\n${r.problems.map((p) => `  - ${p}`).join('\n')}`,
  ];
  return lines;
}
