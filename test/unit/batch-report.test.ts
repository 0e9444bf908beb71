/** The batch report's pure parts: phases from history events, the model, and the HTML's escaping. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderBatchReportHtml } from '../../common/batch-report/html';
import type { VmFacts } from '../../common/batch-report/model';
import { buildBatchReport } from '../../common/batch-report/model';
import type { PhaseEvent } from '../../common/batch-report/phases';
import { phaseSeconds, phaseSpans } from '../../common/batch-report/phases';
import { slotsInUse, uplinkInUse } from '../../common/batch-report/usage';

const T0 = Date.parse('2025-01-01T00:00:00Z');
const at = (s: number, kind: PhaseEvent['kind'], name: string): PhaseEvent => ({ time: T0 + s * 1000, kind, name });

test('phases begin at the events that open them, end where the next begins, and only move forward', () => {
  const events = [
    at(0, 'activity', 'preflightImage'),
    at(1, 'activity', 'uploadImage'),
    at(10, 'activity', 'writeManifest'),
    at(25, 'signal', 'slotGranted'),
    at(25.5, 'activity', 'importInstance'),
    at(30, 'activity', 'describeConversion'),
    // An interrupted conversion rewrites the manifest: still conversion, not back to waiting.
    at(40, 'activity', 'writeManifest'),
    at(60, 'activity', 'validateInstance'),
    at(62, 'activity', 'cleanupVm'),
    at(5, 'signal', 'somethingElse'),
  ];
  const spans = phaseSpans(events, T0 + 63_000);
  assert.deepEqual(
    spans.map((s) => [s.phase, (s.start - T0) / 1000, (s.end - T0) / 1000]),
    [
      ['upload', 0, 10],
      ['slot_wait', 10, 25],
      ['conversion', 25, 60],
      ['validation', 60, 62],
      ['cleanup', 62, 63],
    ]
  );
  assert.deepEqual(phaseSeconds(spans), { upload: 10, slot_wait: 15, conversion: 35, validation: 2, cleanup: 1 });
});

test('a VM that failed in conversion has no validation span; its cleanup runs to the close', () => {
  const spans = phaseSpans(
    [
      at(0, 'activity', 'preflightImage'),
      at(4, 'activity', 'writeManifest'),
      at(5, 'activity', 'importInstance'),
      at(9, 'activity', 'cleanupVm'),
    ],
    T0 + 9_500
  );
  assert.deepEqual(phaseSeconds(spans), { upload: 4, slot_wait: 1, conversion: 4, validation: null, cleanup: 0.5 });
});

const vm = (name: string, over: Partial<VmFacts> = {}): VmFacts => ({
  name,
  phase: 'Completed',
  instanceId: 'i-1',
  volumeId: null,
  conversionTaskId: 'import-i-1',
  bytesUploaded: 10 * 1024 * 1024,
  error: null,
  errorType: null,
  startedAt: new Date(T0).toISOString(),
  finishedAt: new Date(T0 + 20_000).toISOString(),
  ...over,
});

test('the HTML escapes names and messages, has one timeline row per VM, and carries phase seconds', () => {
  const hostile = '<img src=x onerror=alert(1)>"\'&';
  const report = buildBatchReport({
    batch: 'b<1>',
    state: 'failed',
    total: 2,
    vms: [vm('web-01'), vm('db-01', { phase: 'Failed', errorType: 'ConversionFailed', error: hostile })],
    spans: new Map([
      ['web-01', phaseSpans([at(0, 'activity', 'uploadImage'), at(8, 'activity', 'importInstance')], T0 + 20_000)],
      ['db-01', phaseSpans([at(2, 'activity', 'uploadImage'), at(6, 'activity', 'cleanupVm')], T0 + 7_000)],
    ]),
    generatedAt: new Date(T0 + 30_000),
  });
  const html = renderBatchReportHtml(report);
  assert.ok(!html.includes('<img'), 'no tag from a message reaches the page');
  assert.ok(html.includes('&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;'));
  assert.ok(html.includes('Batch b&lt;1&gt;'));
  assert.equal(html.match(/<g class="vm-row /g)?.length, 2);
  assert.match(html, /data-vm="web-01"[^>]*data-upload-s="8"[^>]*data-conversion-s="12"/);
  assert.doesNotMatch(html, /https?:\/\//, 'nothing to fetch');
  assert.equal(report.failures[0]?.fix.startsWith('AWS could not convert'), true);
  assert.equal(report.summary.durationSeconds, 20);
  assert.match(html, /No forecast was recorded/);
});

test('slots in use count overlapping conversions; the uplink spreads bytes over each upload', () => {
  const report = buildBatchReport({
    batch: 'b',
    state: 'completed',
    total: 2,
    vms: [vm('a'), vm('b')],
    spans: new Map([
      ['a', phaseSpans([at(0, 'activity', 'uploadImage'), at(10, 'activity', 'importInstance')], T0 + 30_000)],
      ['b', phaseSpans([at(5, 'activity', 'uploadImage'), at(10, 'activity', 'importInstance')], T0 + 20_000)],
    ]),
    generatedAt: new Date(T0 + 30_000),
  });
  assert.deepEqual(
    slotsInUse(report.vms).map((p) => [(p.t - T0) / 1000, p.value]),
    [
      [10, 2],
      [20, 1],
      [30, 0],
    ]
  );
  const mib = 1024 * 1024;
  assert.deepEqual(
    uplinkInUse(report.vms).map((p) => [(p.t - T0) / 1000, p.value / mib]),
    [
      [0, 1],
      [5, 3],
      [10, 0],
    ]
  );
});
