/**
 * The `status --watch` picture (client/output/watch-frame.ts, watch-model.ts) without a server: it never
 * grows taller or wider than the terminal, sums up what does not fit, shows failures with their reason,
 * and the tracker's ETA shrinks as a VM moves on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BatchView, VmView } from '../../client/batch-view';
import { paint } from '../../client/output/color';
import { progressLines, renderFrame } from '../../client/output/watch-frame';
import { WatchTracker } from '../../client/output/watch-model';
import type { LiveBatch } from '../../client/output/watch-source';

const MiB = 1024 ** 2;

function vm(name: string, phase: VmView['phase'], extra: Partial<VmView> = {}): VmView {
  return {
    name,
    phase,
    percent: 0,
    conversionTaskId: null,
    instanceId: null,
    volumeId: null,
    bytesUploaded: 0,
    error: null,
    errorType: null,
    startedAt: '2026-01-01T10:00:00Z',
    finishedAt: null,
    ...extra,
  };
}

function live(vms: VmView[], sent: Array<[string, number]> = []): LiveBatch {
  const view: BatchView = { batch: 'b1', state: 'running', total: vms.length + 5, vms };
  return {
    view,
    conversionLimit: 3,
    bytesTotal: new Map(vms.map((v) => [v.name, 100 * MiB])),
    bytesSent: new Map(sent),
  };
}

test('the frame fits the terminal: every line within its width, never taller, the rest summed up', () => {
  const vms = [
    ...Array.from({ length: 30 }, (_, i) => vm(`web-${String(i).padStart(2, '0')}`, 'Converting', { percent: 40 })),
    vm('db-01', 'Failed', { errorType: 'ConversionFailed', error: 'Unsupported kernel version 2.6.18\\nmore' }),
  ];
  const state = new WatchTracker().observe(live(vms), Date.parse('2026-01-01T10:05:00Z'));
  const frame = renderFrame(state, { columns: 60, rows: 12 }, paint(false));
  const lines = frame.split('\n');
  assert.ok(lines.length <= 11, `${lines.length} lines for 12 rows`);
  for (const line of lines) assert.ok(line.length <= 60, `too wide: ${line}`);
  assert.match(lines[0]!, /^batch b1: running, 36 VMs · ETA \d/);
  assert.match(frame, /web-00 +Converting +█+░+ +40%/);
  assert.match(
    frame,
    /✖ db-01 ConversionFailed: Unsupported kernel version 2\.6\.18$/m,
    'the first line of the reason'
  );
  assert.match(lines.at(-1)!, /^… \d+ more at work/);
  const tall = renderFrame(state, { columns: 200, rows: 100 }, paint(false));
  assert.ok(!tall.includes('more at work'), 'all shown when they fit');
  assert.equal(tall.split('\n').filter((l) => l.includes('Converting')).length, 30);
});

test('uploads show bytes sent, a VM moving on brings its ETA closer, and plain lines mark each quarter', () => {
  const tracker = new WatchTracker();
  const t0 = Date.parse('2026-01-01T10:00:10Z');
  const first = tracker.observe(live([vm('a', 'Uploading')], [['a', 10 * MiB]]), t0);
  const row = first.rows[0]!;
  assert.equal(row.percent, 10);
  assert.equal(row.bytesDone, 10 * MiB);
  assert.equal(row.atLeast, true, 'the upload was already on when the watch began');
  const later = tracker.observe(live([vm('a', 'Uploading')], [['a', 60 * MiB]]), t0 + 5000);
  assert.ok(later.rows[0]!.eta! < row.eta!, `${later.rows[0]!.eta} < ${row.eta}`);
  assert.equal(progressLines(first, later, '10:00:15').length, 1, '10% → 60%: two quarters passed, one line');
  assert.match(progressLines(first, later, '10:00:15')[0]!, /^10:00:15 a Uploading 60% \(60\.0 MiB\/100 MiB\), ETA \d/);
});
