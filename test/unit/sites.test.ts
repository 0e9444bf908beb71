/**
 * Sites (issue 21) without servers: the inventory's `site` column, the one naming of a site's task queue,
 * and how `status` shows a VM waiting for a worker of its site (table, change lines, --json).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BatchView, VmView } from '../../client/batch-view';
import { statusJson } from '../../client/batch-view';
import { rowToSpec } from '../../client/inventory/columns';
import { changeLines, renderStatus } from '../../client/output/status';
import { sitesOf, siteWaitingText } from '../../client/queue-pollers';
import { siteBaseQueueOf, siteTaskQueueOf } from '../../common/task-queues';

const ROW = { name: 'web-1', image: 'web.raw', architecture: 'x86_64', instance_type: 't2.medium' };

test('the site column: named like a VM, optional, carried into the spec', () => {
  const withSite = rowToSpec({ ...ROW, site: 'dc-2.east' }, '/srv');
  assert.equal(withSite.spec?.site, 'dc-2.east');
  assert.equal(rowToSpec(ROW, '/srv').spec?.site, undefined);
  assert.equal(rowToSpec({ ...ROW, site: '' }, '/srv').spec?.site, undefined);
  for (const bad of ['dc 2', 'dc/2', '..', 'x'.repeat(65)]) {
    const r = rowToSpec({ ...ROW, site: bad }, '/srv');
    assert.equal(r.spec, undefined, bad);
    assert.deepEqual(
      r.problems.map((p) => p.column),
      ['site'],
      `${bad}: ${JSON.stringify(r.problems)}`
    );
  }
});

test("a site's task queue derives from the upload queue, else the main queue", () => {
  assert.equal(siteTaskQueueOf('vmconvoy', 'dc1'), 'vmconvoy-site-dc1');
  assert.equal(siteBaseQueueOf({ taskQueue: 'vmconvoy' }), 'vmconvoy');
  assert.equal(siteBaseQueueOf({ taskQueue: 'vmconvoy', uploadTaskQueue: 'uploads' }), 'uploads');
  assert.notEqual(siteTaskQueueOf('q', 'a'), siteTaskQueueOf('q', 'b'));
  const rows = ['dc1', undefined, 'dc2', 'dc1'].map((site) => ({ spec: { site } }));
  assert.deepEqual(
    [...sitesOf(rows)],
    [
      ['dc1', 2],
      ['dc2', 1],
    ]
  );
});

function vm(name: string, extra: Partial<VmView> = {}): VmView {
  return {
    name,
    phase: 'Preflight',
    percent: 0,
    conversionTaskId: null,
    instanceId: null,
    volumeId: null,
    bytesUploaded: 0,
    error: null,
    errorType: null,
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: null,
    ...extra,
  };
}

test('status shows a VM waiting for a worker of its site: table, change lines and --json', () => {
  const waiting = siteWaitingText('dc3');
  const view: BatchView = {
    batch: 'b1',
    state: 'running',
    total: 2,
    vms: [vm('a-1', { site: 'dc1' }), vm('c-1', { site: 'dc3', waiting })],
  };
  assert.equal(waiting, 'waiting for a worker of site dc3');
  const table = renderStatus(view);
  assert.equal(table.split(waiting).length, 2, table);
  const json = statusJson(view);
  assert.deepEqual(
    json.vms.map((v) => [v.name, v.site, v.waiting]),
    [
      ['a-1', 'dc1', undefined],
      ['c-1', 'dc3', waiting],
    ]
  );
  // A VM without a site keeps the --json shape it had (with the guest inspection every VM now carries).
  assert.deepEqual(Object.keys(statusJson({ ...view, vms: [vm('n-1')] }).vms[0]!).sort(), [
    'conversionTaskId',
    'error',
    'inspection',
    'instanceId',
    'name',
    'percent',
    'phase',
  ]);
  // Watching: the wait is a change worth a line, and so is its end.
  const before: BatchView = { ...view, vms: [vm('c-1', { site: 'dc3' })] };
  assert.match(changeLines(before, view).join('\n'), /c-1 Preflight \(waiting for a worker of site dc3\)/);
  assert.match(changeLines(view, before).join('\n'), /c-1 Preflight$/m);
});
