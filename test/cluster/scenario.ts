/**
 * One run of vmconvoy on the production topology (test/cluster/bed.ts): a multi-wave batch whose VMs sit
 * in two sites, each served by its own site worker with its own image root and uplink, plus a shared
 * worker for the workflows and the shared queues, while the driver kills a site worker during an upload,
 * restarts PostgreSQL, kills the history and the matching service processes, and scales the shared worker
 * from one process to two. Each disruption is measured as an operator sees it (recovery.ts). Then the
 * chaos suite's checks (test/chaos/checks.ts), and what only this topology can show: each site's parts
 * went through that site's uplink only, and the added shared worker took tasks.
 */
import type { Client } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { quotaWorkflowId } from '../../common/workflow-ids';
import { DEFAULT_SETTINGS } from '../../common/contracts/migration';
import { LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY } from '../../dev/services';
import {
  checkBucket,
  checkConversions,
  checkHistories,
  checkLogs,
  checkOutcomes,
  checkQuota,
  checkReuploads,
  vmsKeepingInstances,
} from '../chaos/checks';
import type { ConversionFigures, ReuploadFigures, StatusJson } from '../chaos/checks';
import type { DisruptionKind, DisruptionRecord } from '../chaos/disruptions';
import { phaseCounts } from '../chaos/disruptions';
import type { ChaosVm } from '../chaos/fleet-inventory';
import { PLANNED_FAILURE } from '../chaos/fleet-inventory';
import type { CliRun } from '../e2e/run-cli';
import { runCli } from '../e2e/run-cli';
import { makeImage } from '../helpers/images';
import type { ClusterBed } from './bed';
import type { Recovery } from './recovery';
import { serviceStrike, strikeAndMeasure } from './recovery';

export type ClusterDisruptionKind =
  'kill-site-worker' | 'restart-postgres' | 'kill-history' | 'kill-matching' | 'scale-shared-workers';

export interface ClusterDisruption {
  kind: ClusterDisruptionKind;
  /** `uploading`: parts in flight on the struck site's uplink (kill-site-worker) or any uplink. */
  during: 'uploading' | 'converting' | 'any';
  /** Not before this fraction of the VMs has finished. @default 0 */
  afterFinished?: number;
}

export interface ClusterScenario {
  vms: number;
  waves: number;
  /** One VM in this many fails its conversion on purpose (the simulator's failure marker). 0: none. */
  failEvery: number;
  /** One good VM in this many asks for the boot check. */
  bootCheckEvery: number;
  /** Size of the random-byte RAW images (uploaded whole). */
  imageMiB: number;
  sites: string[];
  uplinkBytesPerSecond: number;
  conversionBytesPerSecond: number;
  maxUploads: number;
  maxConversions: number;
  plan: ClusterDisruption[];
  /** Pause after each disruption's recovery before the next. */
  gapMs: number;
  /** How long to wait for a disruption's moment before striking anyway (then a problem). */
  momentTimeoutMs: number;
  timeoutMs: number;
}

export interface ClusterReport {
  problems: string[];
  seconds: number;
  vms: number;
  outcomes: { completed: number; failed: number; other: number };
  conversions: ConversionFigures;
  leftoverObjects: number;
  bootCheckVms: number;
  quota: { holders: number; waiting: number; limit: number };
  reuploads: ReuploadFigures;
  recoveries: Array<Recovery & { at: number; momentSeen: boolean; partsInFlight: number }>;
  /** Workflow and activity tasks each worker process took (from the histories). */
  tasksByWorker: Record<string, number>;
  /** Part PUTs each site's uplink carried. */
  partsBySite: Record<string, number>;
  secrets: { histories: number; events: number; logLines: number };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const MiB = 1024 * 1024;
const EventType = proto.api.enums.v1.EventType;

interface ClusterFleet {
  csv: string;
  vms: Array<ChaosVm & { site: string }>;
  secrets: string[];
  /** Folder the shared workers read (the user data file ImportInstance sends). */
  sharedRoot: string;
  siteRoots: Record<string, string>;
}

/**
 * Per site, a small pool of random-byte RAW images in that site's own folder (rows share them) and one
 * carrying the simulator's failure marker; rows alternate between the sites. inspection=skip: the images
 * are random bytes, not guests.
 */
async function makeClusterFleet(dir: string, s: ClusterScenario): Promise<ClusterFleet> {
  const sharedRoot = path.join(dir, 'shared');
  await mkdir(sharedRoot, { recursive: true });
  const secret = `vmconvoy-cluster-user-data-${Date.now().toString(36)}`;
  const userData = `#!/bin/sh\necho "${secret}" > /etc/motd\n`;
  const userDataFile = path.join(sharedRoot, 'user-data.sh');
  await writeFile(userDataFile, userData);
  const siteRoots: Record<string, string> = {};
  const pools: Record<string, { good: string[]; failing: string }> = {};
  const sizes = new Map<string, number>();
  for (const site of s.sites) {
    const root = path.join(dir, 'sites', site);
    await mkdir(root, { recursive: true });
    siteRoots[site] = root;
    const size = { virtualMiB: s.imageMiB, randomMiB: s.imageMiB };
    const good = await Promise.all([0, 1, 2].map((i) => makeImage(root, `pool-${i}.raw`, 'raw', size)));
    const failing = await makeImage(root, 'pool-failing.raw', 'raw', {
      ...size,
      marker: `VMCONVOY_SIM_FAIL=${PLANNED_FAILURE}`,
    });
    for (const f of [...good, failing]) sizes.set(f, (await stat(f)).size);
    pools[site] = { good, failing };
  }
  const perWave = Math.ceil(s.vms / s.waves);
  const vms: ClusterFleet['vms'] = [];
  for (let i = 0; i < s.vms; i++) {
    const site = s.sites[i % s.sites.length]!;
    const fails = s.failEvery > 0 && i % s.failEvery === s.failEvery - 1;
    const image = fails ? pools[site]!.failing : pools[site]!.good[i % 3]!;
    vms.push({
      name: `${site}-vm${String(i + 1).padStart(3, '0')}`,
      site,
      image,
      imageBytes: sizes.get(image)!,
      wave: Math.floor(i / perWave) + 1,
      expected: fails ? 'Failed' : 'Completed',
      userDataFile: i % 7 === 0 ? userDataFile : undefined,
      bootCheck: !fails && s.bootCheckEvery > 0 && i % s.bootCheckEvery === 1,
    });
  }
  const lines = ['name,image,architecture,instance_type,wave,user_data_file,tags,boot_check,site,inspection'];
  for (const vm of vms)
    lines.push(
      `${vm.name},${vm.image},x86_64,m3.large,${vm.wave},${vm.userDataFile ?? ''},team=cluster,${vm.bootCheck},${vm.site},skip`
    );
  const csv = path.join(dir, 'cluster.csv');
  await writeFile(csv, `${lines.join('\n')}\n`);
  return { csv, vms, secrets: [secret, userData], sharedRoot, siteRoots };
}

async function batchClosed(client: Client, batch: string): Promise<boolean> {
  try {
    return (await client.workflow.getHandle(batch).describe()).status.name !== 'RUNNING';
  } catch {
    return false;
  }
}

/** The search attributes `vmconvoy setup` adds are in the namespace record, which each service re-reads every few seconds. */
async function waitForSearchAttributes(client: Client): Promise<void> {
  for (const deadline = Date.now() + 60_000; ;) {
    try {
      await client.workflow.count('MigrationBatch = "probe"');
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(500);
    }
  }
}

/** Workflow and activity tasks taken per worker process, by the pid in the identity it records. */
async function tasksByWorker(bed: ClusterBed, batch: string): Promise<Record<string, number>> {
  const owner = new Map<string, string>();
  for (const w of bed.workers.values()) for (const pid of w.pids) owner.set(String(pid), w.name);
  const counts: Record<string, number> = Object.fromEntries([...bed.workers.keys()].map((n) => [n, 0]));
  for await (const wf of bed.client.workflow.list({ query: `MigrationBatch = "${batch}"` })) {
    const history = await bed.client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    for (const e of history.events ?? []) {
      const identity =
        e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
          ? e.workflowTaskStartedEventAttributes?.identity
          : e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            ? e.activityTaskStartedEventAttributes?.identity
            : undefined;
      const pid = identity?.split('@')[0];
      const name = pid ? owner.get(pid) : undefined;
      if (name) counts[name] = (counts[name] ?? 0) + 1;
    }
  }
  return counts;
}

export async function runClusterScenario(
  bed: ClusterBed,
  s: ClusterScenario,
  log: (line: string) => void
): Promise<ClusterReport> {
  const started = Date.now();
  const { client } = bed;
  const cliRuns: Array<{ name: string; run: CliRun }> = [];
  const fleet = await makeClusterFleet(bed.dir, s);
  // The CLI validates every image: it runs where every site's folder is visible.
  const cliEnv = { ...bed.env, VMCONVOY_IMAGE_ROOTS: bed.dir };
  const cli = async (name: string, ...args: string[]): Promise<CliRun> => {
    const run = await runCli(args, cliEnv, bed.dir);
    cliRuns.push({ name, run });
    return run;
  };
  const setup = await cli('setup', 'setup', '--json');
  if (setup.code !== 0) throw new Error(`vmconvoy setup exited ${setup.code}: ${setup.stderr}`);
  await waitForSearchAttributes(client);

  // One shared worker and one per site, each seeing only its own folder.
  await bed.startWorker('shared-1', { site: undefined, imageRoot: fleet.sharedRoot });
  for (const site of s.sites) await bed.startWorker(site, { site, imageRoot: fleet.siteRoots[site]! });

  const batch = `cluster-${Date.now().toString(36)}`;
  const partPath = (site?: string): RegExp =>
    new RegExp(`/${bed.s3.bucket}/vmconvoy/ns=default/${batch}/${site ?? '[^/]+'}-[^/]+/image\\.part\\d+(\\?|$)`);
  const inFlight = (site?: string): number =>
    site
      ? bed.uplinks.get(site)!.putsInFlight(partPath(site))
      : [...bed.uplinks.values()].reduce((n, u) => n + u.putsInFlight(partPath()), 0);
  const imageBytes = fleet.vms.reduce((sum, vm) => sum + vm.imageBytes, 0);
  log(
    `${s.vms} VMs in ${s.waves} waves across ${s.sites.join(', ')} (${(imageBytes / MiB).toFixed(0)} MiB of images), batch ${batch}`
  );
  const start = await cli(
    'start',
    'start',
    fleet.csv,
    '--batch',
    batch,
    '--max-uploads',
    String(s.maxUploads),
    '--max-conversions',
    String(s.maxConversions)
  );
  if (start.code !== 0) throw new Error(`vmconvoy start exited ${start.code}:\n${start.stdout}\n${start.stderr}`);
  const closed = (): Promise<boolean> => batchClosed(client, batch);

  const recoveries: ClusterReport['recoveries'] = [];
  const problems: string[] = [];
  let extraShared = 1;
  for (const d of s.plan) {
    if (await closed()) {
      problems.push(`the batch closed before "${d.kind} during ${d.during}"`);
      break;
    }
    const site = d.kind === 'kill-site-worker' ? s.sites[recoveries.length % s.sites.length]! : undefined;
    let phases: Record<string, number> = {};
    const finished = (): number => ((phases.Completed ?? 0) + (phases.Failed ?? 0) + (phases.Cancelled ?? 0)) / s.vms;
    const deadline = Date.now() + s.momentTimeoutMs;
    let seen = false;
    for (;;) {
      phases = (await phaseCounts(client, batch)) ?? phases;
      const moment =
        d.during === 'any' ||
        (d.during === 'uploading' && inFlight(site) > 0) ||
        (d.during === 'converting' && (phases.Converting ?? 0) > 0);
      if (finished() >= (d.afterFinished ?? 0) && moment) {
        seen = true;
        break;
      }
      if (Date.now() > deadline || (await closed())) break;
      await sleep(200);
    }
    const partsInFlight = inFlight(site);
    const what =
      d.kind === 'kill-site-worker'
        ? `kill worker of ${site}`
        : d.kind === 'scale-shared-workers'
          ? `shared workers ${extraShared} → ${extraShared + 1}`
          : d.kind.replace('-', ' ');
    log(
      `${what} during ${d.during}${seen ? '' : ' (moment NOT seen)'}; parts in flight ${partsInFlight}; ${JSON.stringify(phases)}`
    );
    const act = ((): (() => Promise<void>) => {
      switch (d.kind) {
        case 'kill-site-worker':
          return async () => {
            await bed.killWorker(site!);
            // A crashed host comes back after a while; the server notices the missing heartbeats meanwhile.
            await sleep(2000);
            await bed.restartWorker(site!);
          };
        case 'restart-postgres':
          return serviceStrike(bed.cluster, 'postgres', 'restart');
        case 'kill-history':
          return serviceStrike(bed.cluster, 'history', 'kill', 3000);
        case 'kill-matching':
          return serviceStrike(bed.cluster, 'matching', 'kill', 2000);
        case 'scale-shared-workers':
          extraShared += 1;
          return async () => {
            await bed.startWorker(`shared-${extraShared}`, { site: undefined, imageRoot: fleet.sharedRoot });
          };
      }
    })();
    const recovery = await strikeAndMeasure({ client, batch, what, act, timeoutMs: 300_000, batchClosed: closed });
    recoveries.push({ ...recovery, momentSeen: seen, partsInFlight });
    if (!seen) problems.push(`${what}: its moment (${d.during}) was not seen; struck anyway`);
    await sleep(s.gapMs);
  }

  const deadline = started + s.timeoutMs;
  while (!(await closed())) {
    if (Date.now() > deadline) throw new Error(`the batch did not finish within ${Math.round(s.timeoutMs / 1000)} s`);
    await sleep(1000);
  }
  const seconds = (Date.now() - started) / 1000;
  log(`batch closed after ${seconds.toFixed(0)} s`);

  // The chaos suite's checks, each from the outside.
  const statusRun = await cli('status', 'status', batch, '--json');
  const expectFailures = fleet.vms.some((v) => v.expected === 'Failed');
  if (statusRun.code !== (expectFailures ? 2 : 0))
    problems.push(`vmconvoy status exited ${statusRun.code}, expected ${expectFailures ? 2 : 0}: ${statusRun.stderr}`);
  const status = JSON.parse(statusRun.stdout) as StatusJson;
  const outcomes = checkOutcomes(fleet.vms, status, PLANNED_FAILURE);
  const sim = await bed.sim.state();
  const conversions = checkConversions(fleet.vms, batch, sim);
  const bucket = await checkBucket(bed.s3.client, bed.s3.bucket, 'vmconvoy/', batch, {
    namespace: 'default',
    recordsFor: vmsKeepingInstances(status, batch, sim, { completed: true }),
    batchReport: true,
  });
  // The simulator's own key belongs to its default account, one of its own in each run (testbed startSim):
  // the batch's quota is that account's (issue 20).
  const quotaId = quotaWorkflowId(bed.sim.accountId, bed.s3.region);
  const quota = await checkQuota(client, quotaId, s.maxConversions);
  const puts = [...bed.uplinks.values()].flatMap((u) => u.puts());
  // The check names a disruption only in its messages; ours are told apart by position (recoveries[i]).
  const records = recoveries.map(
    (r, i) =>
      ({
        kind: s.plan[i]!.kind as string as DisruptionKind,
        during: s.plan[i]!.during,
        at: r.at,
        momentSeen: r.momentSeen,
        partsInFlight: r.partsInFlight,
        phases: r.phases,
        downMs: r.downMs,
      }) satisfies DisruptionRecord
  );
  const reuploads = checkReuploads(puts, partPath(), records, imageBytes, {
    maxUploads: s.maxUploads,
    uploadConcurrency: DEFAULT_SETTINGS.uploadConcurrency,
    partSizeBytes: DEFAULT_SETTINGS.partSizeBytes,
  });
  const secrets = [...fleet.secrets, LOCAL_SECRET_ACCESS_KEY, LOCAL_ACCESS_KEY_ID];
  const histories = await checkHistories(client, batch, [quotaId], secrets);
  // Every log line: the workers', the CLI's, and every cluster process's (Temporal services, UI, PostgreSQL).
  const logSources = [
    ...(await Promise.all(
      [...bed.workers.values()].map(async (w) => ({
        name: path.basename(w.logFile),
        text: await readFile(w.logFile, 'utf8'),
      }))
    )),
    ...(await Promise.all(
      (await readdir(bed.cluster.logDir)).map(async (f) => ({
        name: `cluster ${f}`,
        text: await readFile(path.join(bed.cluster.logDir, f), 'utf8'),
      }))
    )),
    ...cliRuns.map(({ name, run }) => ({ name: `vmconvoy ${name}`, text: `${run.stdout}\n${run.stderr}` })),
  ];
  const logs = checkLogs(logSources, secrets);

  // What the topology adds: each site's parts went up its own uplink, and the added shared worker worked.
  const partsBySite: Record<string, number> = {};
  for (const site of s.sites) {
    const uplink = bed.uplinks.get(site)!;
    partsBySite[site] = uplink.putCount(partPath(site));
    const foreign = uplink.puts().filter((p) => partPath().test(p.path) && !partPath(site).test(p.path));
    if (foreign.length > 0)
      problems.push(`${foreign.length} parts of other sites went through ${site}'s uplink, e.g. ${foreign[0]!.path}`);
    if (partsBySite[site] === 0) problems.push(`no part went through ${site}'s uplink`);
  }
  const tasks = await tasksByWorker(bed, batch);
  for (const name of bed.workers.keys())
    if ((tasks[name] ?? 0) === 0) problems.push(`worker ${name} took no task of the batch`);

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
    vms: s.vms,
    outcomes: outcomes.figures,
    conversions: conversions.figures,
    leftoverObjects: bucket.figures.leftover,
    bootCheckVms: fleet.vms.filter((v) => v.bootCheck).length,
    quota: quota.figures,
    reuploads: reuploads.figures,
    recoveries,
    tasksByWorker: tasks,
    partsBySite,
    secrets: { ...histories.figures, logLines: logs.figures.logLines },
  };
}

/** The report as lines a person reads (and CI logs keep). */
export function formatClusterReport(r: ClusterReport): string[] {
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`.padStart(8);
  return [
    `VMs: ${r.vms} — completed ${r.outcomes.completed}, failed ${r.outcomes.failed} (as planned), other ${r.outcomes.other}; ${r.seconds.toFixed(0)} s; boot checks ${r.bootCheckVms}`,
    `conversion tasks: ${r.conversions.tasks} (duplicates ${r.conversions.duplicates}); instances ${r.conversions.instances}; ImportInstance calls ${r.conversions.importCalls}`,
    `conversion slots at the end: ${r.quota.holders} held, ${r.quota.waiting} waiting, limit ${r.quota.limit}; S3 objects left: ${r.leftoverObjects}`,
    `bytes: images ${(r.reuploads.imageBytes / MiB).toFixed(1)} MiB, parts sent ${(r.reuploads.partBytesSent / MiB).toFixed(1)} MiB, sent again ${(r.reuploads.reuploadedBytes / MiB).toFixed(1)} MiB (bound per disruption ${(r.reuploads.boundBytes / MiB).toFixed(0)} MiB)`,
    `parts by site uplink: ${JSON.stringify(r.partsBySite)}; tasks by worker: ${JSON.stringify(r.tasksByWorker)}`,
    `${'disruption'.padEnd(26)}${'in flight'.padStart(10)}${'down'.padStart(9)}${'answers'.padStart(9)}${'progress'.padStart(10)}${'re-sent'.padStart(11)}  phases at strike`,
    ...r.recoveries.map(
      (x, i) =>
        `${x.what.padEnd(26)}${String(x.partsInFlight).padStart(10)} ${s(x.downMs)} ${s(x.servedMs)}  ${s(x.progressMs)}  ${`${((r.reuploads.perDisruption[i]?.reuploadedBytes ?? 0) / MiB).toFixed(1)} MiB`.padStart(9)}  ${JSON.stringify(x.phases)}`
    ),
    `secret scan: ${r.secrets.histories} histories (${r.secrets.events} events), ${r.secrets.logLines} log lines`,
    r.problems.length === 0
      ? 'PASS: no problem found'
      : `FAIL: ${r.problems.length} problems:\n${r.problems.map((p) => `  - ${p}`).join('\n')}`,
  ];
}
