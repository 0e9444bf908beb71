/**
 * One chaos run: a fleet on the local environment (dev/local-env.ts: Temporal dev server with a persistent
 * database, versitygw, the EC2 simulator, a worker process), started with the real `vmconvoy` binary,
 * while the driver kills the worker and restarts every server, terminates a VM that holds a conversion slot,
 * stops one VM's instance during its boot check, and the simulator throttles, fails calls and lists what it
 * creates late. When the batch has ended, `vmconvoy retry` runs the failed VMs again. Then every check of
 * checks.ts. Uploads go through a counting proxy, so re-sent bytes are measured at the wire whatever the
 * uploader believes.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startCommand } from '../../client/commands/start';
// The simulator's own key belongs to its default account: the local batch's quota is that account's (issue 20).
import { DEFAULT_ACCOUNT_ID } from '../../sim/config';
import { quotaWorkflowId } from '../../common/workflow-ids';
import { createAwsClients, destroyAwsClients } from '../../common/aws/clients';
import { loadConfig } from '../../common/config';
import type { MigrationSettings } from '../../common/contracts/migration';
import { controlTaskQueueOf } from '../../common/task-queues';
import { StopInstancesCommand } from '@aws-sdk/client-ec2';
import { quotaStateQuery } from '../../workflows/messages';
import type { SlotHolder } from '../../workflows/messages';
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
import {
  checkBucket,
  checkConversions,
  checkHistories,
  checkLogs,
  checkOutcomes,
  checkQuota,
  checkReuploads,
  vmsKeepingInstances,
} from './checks';
import type { ConversionFigures } from './checks';
import type { Disruption, DisruptionRecord, TrapResult } from './disruptions';
import { runDisruptions, trapBootCheck } from './disruptions';
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
  /** EC2's eventual consistency: a new task, instance or volume is listed this long after (drawn in [min, max]). */
  listingDelaySeconds: [number, number];
  /** One good VM in this many asks for the boot check. */
  bootCheckEvery: number;
  /**
   * Per-VM settings of the batch (the CLI has no flag for them: the batch is started through startCommand,
   * what `vmconvoy start` runs): a boot-check timeout short enough for the trapped VM to fail in the run's
   * time, and a listing wait that covers the simulator's listing delay with a margin.
   */
  settings: Partial<MigrationSettings>;
  /**
   * The quota workflow's liveness check interval. The run starts the quota workflow itself with it (the
   * input a VM's signal-with-start would give it, plus this), as a deployment that wants a terminated VM's
   * slot back sooner would.
   */
  holderCheckSeconds: number;
  /** One boot-check VM fails validation once (its instance is stopped during the check), then `retry`. */
  validationRetry: boolean;
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
  conversions: ConversionFigures;
  leftoverObjects: number;
  /** Resource records left for VMs that ended failed with an instance (must be exactly those). */
  records: number;
  bootCheckVms: number;
  quota: { holders: number; waiting: number; limit: number };
  /** The trapped VM: stops of its instance, and whether its first run failed as planned. */
  trap?: TrapResult;
  /** `vmconvoy retry` after the batch's first end: when (s since start) and how long the second end took. */
  retry?: { at: number; seconds: number; mode: string };
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

async function waitClosed(client: Client, batch: string, deadline: number, timeoutMs: number): Promise<void> {
  while (!(await batchClosed(client, batch))) {
    if (Date.now() > deadline) {
      throw new Error(
        `the batch did not finish within ${Math.round(timeoutMs / 1000)} s; still running: ${await stillRunning(client, batch)}`
      );
    }
    await sleep(1000);
  }
}

/** The batch's VM workflows still running, with their phase (what a timeout needs to be diagnosed). */
async function stillRunning(client: Client, batch: string): Promise<string> {
  const out: string[] = [];
  try {
    for await (const wf of client.workflow.list({
      query: `MigrationBatch = "${batch}" AND ExecutionStatus = "Running" AND WorkflowType = "migrateVmWorkflow"`,
    }))
      out.push(`${wf.workflowId} (${String(wf.searchAttributes?.MigrationPhase ?? '?')})`);
  } catch (err) {
    return `unknown (${(err as Error).message})`;
  }
  return out.join(', ') || 'no VM workflow';
}

async function statusOf(cli: (name: string, ...args: string[]) => Promise<CliRun>, name: string, batch: string) {
  const run = await cli(name, 'status', batch, '--json');
  if (run.code !== 0 && run.code !== 2) throw new Error(`vmconvoy status exited ${run.code}: ${run.stderr}`);
  return { code: run.code, status: JSON.parse(run.stdout) as StatusJson };
}

/** StopInstances as someone else's tool sends it: retried through throttling and restarts of the simulator. */
async function stopWithRetries(send: () => Promise<unknown>, log: (line: string) => void): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await send();
      return;
    } catch (err) {
      if (attempt >= 20) {
        log(`chaos: StopInstances kept failing: ${String(err)}`);
        return;
      }
      await sleep(500);
    }
  }
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
        bootCheckEvery: opts.bootCheckEvery,
      }),
      startLocalEnv({
        stateDir,
        ports,
        worker: false,
        workerEntry: opts.workerEntry,
        simConfig: {
          speed: {
            conversionBytesPerSecond: opts.conversionBytesPerSecond,
            stepSeconds: 0.5,
            pendingPollMs: 300,
            // Start → running, running → status ok, stop → stopped: 3 s each (the default 0.5 s left the boot
            // check's first status poll, when an SDK retry delayed it, seeing ok before the validation trap,
            // polling every 300 ms, could stop the instance). Still far quicker than EC2's minutes.
            instanceTransitionSeconds: 3,
          },
          consistency: {
            listingDelayMinSeconds: opts.listingDelaySeconds[0],
            listingDelayMaxSeconds: opts.listingDelaySeconds[1],
          },
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
    const config = loadConfig(cliEnv);
    const namespace = client.options.namespace;
    const quotaId = quotaWorkflowId(DEFAULT_ACCOUNT_ID, local.info.region);
    s3 = localS3Client(local.info.s3Endpoint);
    const imageBytes = fleet.vms.reduce((sum, vm) => sum + vm.imageBytes, 0);
    log(
      `chaos: ${opts.vms} VMs (${(imageBytes / 1024 / 1024).toFixed(0)} MiB of images), batch ${batch}, state ${stateDir}`
    );

    // The quota workflow first, with the liveness interval of this run; the VMs' signal-with-start joins it.
    await client.workflow.start('conversionQuotaWorkflow', {
      workflowId: quotaId,
      taskQueue: controlTaskQueueOf(config.temporal),
      args: [{ limit: opts.maxConversions, holderCheckSeconds: opts.holderCheckSeconds }],
    });
    const start = await startCommand(
      fleet.csv,
      { batch, maxUploads: opts.maxUploads, maxConversions: opts.maxConversions, settings: opts.settings },
      config,
      () => Promise.resolve(client)
    );
    if (!start.ok) throw new Error(`start refused the inventory: ${JSON.stringify(start.errors)}`);

    const random = seededRandom(opts.seed);
    // Parts live under `<prefix>ns=<namespace>/<batch>/<vm>/` (common/object-keys.ts).
    const partPath = new RegExp(
      `/${local.info.bucket}/vmconvoy/ns=${encodeURIComponent(namespace)}/${batch}/[^/]+/image\\.part\\d+(\\?|$)`
    );
    const simState = async (): Promise<SimState> => (await simRequest(local!, 'state')) as SimState;
    const quotaHolders = async (): Promise<SlotHolder[] | undefined> => {
      try {
        const state = await client.workflow.getHandle(quotaId).query(quotaStateQuery);
        return state.holderRuns ?? state.holders.map((workflowId) => ({ workflowId }));
      } catch {
        return undefined;
      }
    };
    const spared = new Set(fleet.vms.filter((v) => v.expected === 'Failed').map((v) => v.name));
    if (opts.validationRetry && fleet.validationRetryVm) spared.add(fleet.validationRetryVm);
    const aws = createAwsClients(config.aws);
    const trap =
      opts.validationRetry && fleet.validationRetryVm
        ? trapBootCheck(
            { client, batch, simState, log, batchClosed: () => batchClosed(client, batch) },
            fleet.validationRetryVm,
            (instanceId) =>
              stopWithRetries(() => aws.ec2.send(new StopInstancesCommand({ InstanceIds: [instanceId] })), log)
          ).finally(() => destroyAwsClients(aws))
        : undefined;
    if (!trap) destroyAwsClients(aws);
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
        simState,
        quotaHolders,
        holderCheckSeconds: opts.holderCheckSeconds,
        spared,
      },
      opts.plan,
      { momentTimeoutMs: 180_000, gapMs: 4000 }
    );

    const deadline = started + opts.timeoutMs;
    await waitClosed(client, batch, deadline, opts.timeoutMs);
    const trapped = await trap;
    log(`chaos: batch closed after ${((Date.now() - started) / 1000).toFixed(0)} s`);
    const problems: string[] = [];

    // A retry is planned when a VM was made to fail (terminated, or its validation refused): run them again.
    const retryPlanned =
      (opts.validationRetry && !!fleet.validationRetryVm) || opts.plan.some((d) => d.kind === 'terminate-vm');
    let retry: ChaosReport['retry'];
    if (retryPlanned) {
      const first = await statusOf(cli, 'status (before the retry)', batch);
      if (trapped) {
        const vm = first.status.vms.find((v) => v.name === trapped.vm);
        if (!trapped.failed || vm?.phase !== 'Failed' || !vm.error?.includes('did not reach running'))
          problems.push(
            `${trapped.vm}: its first run should fail the boot check (instance stopped ${trapped.stops} times), ended ${vm?.phase} (${vm?.error ?? 'no error'})`
          );
      }
      // Failed with an instance: its record must be there for the retry to adopt or terminate it.
      const firstSim = await simState();
      const keeping = vmsKeepingInstances(first.status, batch, firstSim);
      if (trapped && !keeping.includes(trapped.vm))
        problems.push(`${trapped.vm}: failed validation but no instance of it remains for the retry to adopt`);
      const recordCheck = await checkBucket(s3, local.info.bucket, 'vmconvoy/', batch, {
        namespace,
        recordsFor: keeping,
      });
      problems.push(
        ...recordCheck.problems.filter((p) => p.includes('resource record')).map((p) => `before the retry: ${p}`)
      );
      const retryAt = Date.now();
      const retryRun = await cli('retry', 'retry', batch, '--json');
      if (retryRun.code !== 0)
        throw new Error(`vmconvoy retry exited ${retryRun.code}:\n${retryRun.stdout}\n${retryRun.stderr}`);
      const mode = (JSON.parse(retryRun.stdout) as { mode: string }).mode;
      log(`chaos: vmconvoy retry ${batch}: ${mode}`);
      await waitClosed(client, batch, deadline, opts.timeoutMs);
      retry = { at: (retryAt - started) / 1000, seconds: (Date.now() - retryAt) / 1000, mode };
      log(`chaos: batch closed again ${retry.seconds.toFixed(0)} s after the retry`);
    }
    const seconds = (Date.now() - started) / 1000;

    // The checks, each from the outside.
    const { code: statusCode, status } = await statusOf(cli, 'status', batch);
    const expectFailures = fleet.vms.some((v) => v.expected === 'Failed');
    if (statusCode !== (expectFailures ? 2 : 0))
      problems.push(`vmconvoy status exited ${statusCode}, expected ${expectFailures ? 2 : 0}`);
    const outcomes = checkOutcomes(fleet.vms, status, PLANNED_FAILURE);
    const sim = await simState();
    const conversions = checkConversions(fleet.vms, batch, sim, retryPlanned ? 2 : 1);
    const bucket = await checkBucket(s3, local.info.bucket, 'vmconvoy/', batch, {
      namespace,
      recordsFor: vmsKeepingInstances(status, batch, sim, { completed: true }),
      batchReport: true,
    });
    const quota = await checkQuota(client, quotaId, opts.maxConversions);
    // What the retry re-sends is the retry's (failure cleanup deleted the failed VMs' parts), not a disruption's.
    const retryCutoff = retry ? started + retry.at * 1000 : Infinity;
    const puts = proxy.puts().filter((p) => p.at < retryCutoff);
    const reuploads = checkReuploads(puts, partPath, disruptions, imageBytes, {
      maxUploads: opts.maxUploads,
      uploadConcurrency: DEFAULT_SETTINGS.uploadConcurrency,
      partSizeBytes: DEFAULT_SETTINGS.partSizeBytes,
    });
    const secrets = [...fleet.secrets, LOCAL_SECRET_ACCESS_KEY, LOCAL_ACCESS_KEY_ID];
    const histories = await checkHistories(client, batch, [quotaId], secrets);
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
    for (const d of disruptions.filter((x) => x.kind === 'terminate-vm')) {
      if (!d.vm) problems.push('terminate-vm found no VM of the batch holding a slot');
      else if (!d.slotFreed)
        problems.push(`${d.vm}: its slot was not free within ${opts.holderCheckSeconds + 30} s of the terminate`);
    }
    problems.push(
      ...outcomes.problems,
      ...conversions.problems,
      ...bucket.problems,
      ...quota.problems,
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
      records: bucket.figures.records,
      bootCheckVms: fleet.vms.filter((v) => v.bootCheck).length,
      quota: quota.figures,
      trap: trapped,
      retry,
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
    `conversion tasks: ${r.conversions.tasks} for ${r.vms} VMs (duplicates ${r.conversions.duplicates}); instances ${r.conversions.instances} (+${r.conversions.terminatedInstances} terminated); EC2 calls ImportInstance ${r.conversions.importCalls}, DescribeConversionTasks ${r.conversions.describeCalls}, StartInstances ${r.conversions.startCalls}, StopInstances ${r.conversions.stopCalls}`,
    `boot checks: ${r.bootCheckVms} VMs${r.trap ? `; ${r.trap.vm}'s instance stopped ${r.trap.stops}× during its boot check, first run ${r.trap.failed ? 'failed validation' : 'DID NOT fail'}` : ''}${r.retry ? `; vmconvoy retry (${r.retry.mode}) at ${r.retry.at.toFixed(0)} s, batch ended again ${r.retry.seconds.toFixed(0)} s later` : ''}`,
    `conversion slots at the end: ${r.quota.holders} held, ${r.quota.waiting} waiting, limit ${r.quota.limit}`,
    `S3 objects left for finished VMs: ${r.leftoverObjects}; resource records of VMs with an instance (kept for retry and rollback): ${r.records}`,
    `bytes: images ${(r.reuploads.imageBytes / MiB).toFixed(1)} MiB, part bytes sent ${(r.reuploads.partBytesSent / MiB).toFixed(1)} MiB, sent again ${(r.reuploads.reuploadedBytes / MiB).toFixed(1)} MiB (bound per disruption ${(r.reuploads.boundBytes / MiB).toFixed(0)} MiB = uploads × lanes × part size)`,
    ...r.disruptions.map(
      (d, i) =>
        `  ${i + 1}. ${d.kind.padEnd(16)} during ${d.during.padEnd(12)} parts in flight ${String(d.partsInFlight).padStart(2)}, sent again after it ${(r.reuploads.perDisruption[i]!.reuploadedBytes / MiB).toFixed(1).padStart(5)} MiB, ${d.kind === 'terminate-vm' ? `${d.vm ?? '?'} terminated, slot free again after ${(d.downMs / 1000).toFixed(1)} s` : `down ${(d.downMs / 1000).toFixed(1)} s`}${d.startStopCalls ? ` (StartInstances ${d.startStopCalls.start}, StopInstances ${d.startStopCalls.stop})` : ''}`
    ),
    `secret scan: ${r.secrets.histories} histories (${r.secrets.events} events), ${r.secrets.logLines} log lines`,
    r.problems.length === 0
      ? 'PASS: no problem found'
      : `FAIL: ${r.problems.length} problems:\n${r.problems.map((p) => `  - ${p}`).join('\n')}`,
  ];
  return lines;
}
