/**
 * The tests of a cluster scenario (plans.ts), shared by cluster.test.ts (the full one, `npm run
 * test:cluster`) and reduced.test.ts: the cluster's own surface (dynamic config, UI, metrics), the
 * scenario with every check of the chaos suite, and a clean stop.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { DYNAMIC_CONFIG_FILE } from '../../dev/cluster';
import { resolveTemporalServer } from '../../dev/tools';
import { tempDir } from '../helpers/testbed';
import type { ClusterBed } from './bed';
import { startClusterBed } from './bed';
import type { ClusterScenario } from './scenario';
import { formatClusterReport, runClusterScenario } from './scenario';

const execFileAsync = promisify(execFile);

export function clusterSuite(label: string, scenario: ClusterScenario): void {
  const figures: string[] = [];
  const say = (line: string): void => {
    figures.push(line);
    console.log(`[cluster-test] ${line}`);
  };
  let dir: { dir: string; remove(): Promise<void> } | undefined;
  let bed: ClusterBed | undefined;

  before(async () => {
    dir = await tempDir('vmconvoy-cluster-');
    bed = await startClusterBed({
      dir: dir.dir,
      sites: scenario.sites,
      uplinkBytesPerSecond: scenario.uplinkBytesPerSecond,
      // Conversions last long enough for the disruptions to land while VMs wait on them.
      simConfig: {
        speed: { conversionBytesPerSecond: scenario.conversionBytesPerSecond, stepSeconds: 0.5, pendingPollMs: 300 },
      },
      log: say,
    });
  });

  after(async () => {
    await bed?.stop().catch(() => undefined);
    if (process.env.VMCONVOY_CLUSTER_KEEP) console.log(`[cluster-test] kept ${dir?.dir}`);
    else await dir?.remove();
    console.log(`\n[cluster-test] figures:\n${figures.map((l) => `  ${l}`).join('\n')}`);
  });

  test('the dynamic-config file holds only keys and types the server knows', async () => {
    const server = await resolveTemporalServer({ build: false });
    assert.ok(server, 'temporal-server was built by startCluster');
    // An unknown key (a typo the server would silently ignore) or a value of the wrong type is printed as
    // a warning, with exit code 0; a file it cannot read prints nothing at all.
    const { stdout } = await execFileAsync(server.path, ['validate-dynamic-config', DYNAMIC_CONFIG_FILE]);
    assert.match(stdout, /vmconvoy\.yaml/);
    assert.doesNotMatch(stdout, /error|warning/i);
  });

  test('the cluster serves its Web UI and each service its metrics', async () => {
    const cluster = bed!.cluster;
    const ui = await fetch(cluster.uiUrl!);
    assert.equal(ui.status, 200);
    assert.match(await ui.text(), /<html/i);
    for (const [service, url] of Object.entries(cluster.metricsUrls)) {
      const res = await fetch(url);
      assert.equal(res.status, 200, `${service} metrics`);
    }
    assert.deepEqual(Object.keys(cluster.pids()).sort(), [
      'frontend',
      'history',
      'matching',
      'postgres',
      'ui',
      'worker',
    ]);
    // The UI reaches the frontend: its API lists the namespace the cluster created.
    const namespaces = (await (await fetch(`${cluster.uiUrl}/api/v1/namespaces`)).json()) as {
      namespaces: Array<{ namespaceInfo: { name: string } }>;
    };
    assert.ok(namespaces.namespaces.some((n) => n.namespaceInfo.name === 'default'));
  });

  test(label, async () => {
    const report = await runClusterScenario(bed!, scenario, say);
    for (const line of formatClusterReport(report)) say(line);
    assert.deepEqual(report.problems, []);
    // The checks above are empty lists when nothing was looked at: the run must have covered the batch.
    assert.equal(report.outcomes.completed + report.outcomes.failed, scenario.vms);
    assert.equal(report.recoveries.length, scenario.plan.length);
    assert.ok(report.secrets.histories > scenario.vms, 'the secret scan read the fleet, VM and quota histories');
  });

  test('stopping the cluster leaves no process behind', async () => {
    const b = bed!;
    const pids = [
      ...Object.values(b.cluster.pids()),
      ...[...b.workers.values()].map((w) => w.process.child.pid),
    ].filter((p): p is number => p !== undefined);
    const t0 = Date.now();
    await b.stop();
    bed = undefined;
    say(`cluster and workers stopped in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const alive = pids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    assert.deepEqual(alive, []);
  });
}
