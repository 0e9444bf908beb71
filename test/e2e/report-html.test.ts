/**
 * The batch report and notifications through the `vmconvoy` binary, with a worker run as an operator runs
 * it: a 4-VM batch in two waves (one VM refused by the simulator's conversion) started with `--notify` to a
 * loopback receiver that checks every signature. Then: `report --format html` opened in headless Chromium
 * with the network off (screenshot in test-artifacts/) agrees with `report --json`; the batch's JSON and
 * HTML reports are in S3 beside its VM folders; the receiver got the failure, both wave ends and the batch
 * end, each correctly signed, and a delivery it refused once was delivered again.
 */
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { chromium } from 'playwright-core';
import type { ServiceProcess } from '../../dev/process';
import { REPO_ROOT } from '../../dev/services';
import { batchReportKey } from '../../common/object-keys';
import { fleetWorkflowId } from '../../common/workflow-ids';
import { scanForSecrets } from '../helpers/secret-scan';
import { makeImage } from '../helpers/images';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import { startS3, startSim, startTemporal, tempDir } from '../helpers/testbed';
import { spawnCliWorker, testbedEnv, eventually, runCli } from './run-cli';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
const SECRET = 'report-test-secret-3f9a';
/** The receiver's URL carries a token in its path, as webhook URLs do: it must reach no history. */
const URL_TOKEN = 'hook-token-5c2e8a71d04b';
const FAIL_MARKER = 'VMCONVOY_SIM_FAIL=ClientError: Unsupported kernel version 2.6.18';
const PHASES = ['upload', 'slot_wait', 'conversion', 'validation', 'cleanup'] as const;

/** What the test reads of a timeline row in the browser (the tests compile without the DOM's types). */
interface DomRow {
  getAttribute(name: string): string | null;
  querySelectorAll(selector: string): { length: number };
  getBoundingClientRect(): { width: number };
}

interface BrowserGlobals {
  getComputedStyle(element: unknown): { fill: string };
}

interface Received {
  body: string;
  signature: string;
  event: string;
  delivery: string;
  path: string;
  status: number;
}

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let dir: { dir: string; remove(): Promise<void> };
let worker: ServiceProcess;
let receiver: Server;
let env: NodeJS.ProcessEnv;
const received: Received[] = [];

/** Refuses the first batch.ended delivery with a 503, to see it retried. */
function startReceiver(): Promise<Server> {
  let refusedOnce = false;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const event = String(req.headers['x-vmconvoy-event'] ?? '');
      const status = event === 'batch.ended' && !refusedOnce ? 503 : 204;
      if (status === 503) refusedOnce = true;
      received.push({
        body,
        signature: String(req.headers['x-vmconvoy-signature'] ?? ''),
        event,
        delivery: String(req.headers['x-vmconvoy-delivery'] ?? ''),
        path: req.url ?? '',
        status,
      });
      res.writeHead(status).end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function signatureValid(r: Received): boolean {
  const expected = Buffer.from(`sha256=${createHmac('sha256', SECRET).update(r.body).digest('hex')}`);
  const got = Buffer.from(r.signature);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

before(async () => {
  [temporal, s3, sim, dir, receiver] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim({
      config: { speed: { conversionBytesPerSecond: 256 * 1024 * 1024, stepSeconds: 0.2, pendingPollMs: 200 } },
    }),
    tempDir('vmconvoy-report-'),
    startReceiver(),
  ]);
  env = testbedEnv({ temporal, s3, sim, dir: dir.dir }, 'e2e-report', {
    TEMPORAL_NAMESPACE: temporal.namespace,
  });
  await Promise.all([
    makeImage(dir.dir, 'web.raw', 'raw', { virtualMiB: 8, randomMiB: 2 }),
    makeImage(dir.dir, 'app.vhd', 'fixed-vhd', { virtualMiB: 8, randomMiB: 1 }),
    makeImage(dir.dir, 'db.vmdk', 'stream-vmdk', { virtualMiB: 8, randomMiB: 1 }),
    makeImage(dir.dir, 'legacy.raw', 'raw', { virtualMiB: 8, randomMiB: 1, marker: FAIL_MARKER }),
  ]);
  // The secret is the worker's alone: the CLI that starts the batch never has it.
  worker = await spawnCliWorker(env, dir.dir, {
    extraEnv: {
      VMCONVOY_NOTIFY_SECRET: SECRET,
      VMCONVOY_NOTIFY_URL_HOOKS: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook/${URL_TOKEN}`,
    },
  });
});

after(async () => {
  await worker?.stop();
  receiver?.close();
  await Promise.all([sim?.stop(), s3?.stop()]);
  await temporal?.stop();
  await dir?.remove();
});

const vmconvoy = (...args: string[]) => runCli(args, env, dir.dir);
const batch = `rep-${Date.now().toString(36)}`;

test('a batch with --notify: HTML report in Chromium matches the JSON, reports in S3, signed events received', async () => {
  const csv = path.join(dir.dir, 'inventory.csv');
  await writeFile(
    csv,
    [
      'Name,Image,Architecture,Instance_Type,Wave,Inspection',
      'web-01,web.raw,x86_64,t2.medium,1,skip',
      'legacy-01,legacy.raw,x86_64,t2.medium,1,skip',
      'app-01,app.vhd,x86_64,t2.medium,2,skip',
      'db-01,db.vmdk,x86_64,t2.medium,2,skip',
    ].join('\n') + '\n'
  );
  // A URL is refused: the batch's options are kept in its history. The receiver is the workers' setting.
  const url = await vmconvoy('start', csv, '--batch', batch, '--notify', 'https://hooks.example/T0KEN');
  assert.equal(url.code, 1);
  assert.match(url.stderr, /give the name of a receiver, not a URL: set the URL on the workers as VMCONVOY_NOTIFY_URL/);
  const started = await vmconvoy('start', csv, '--batch', batch, '--notify', 'hooks', '--wait');
  assert.equal(started.code, 2, `one VM fails: exit 2\n${started.stderr}`);

  // --- the JSON report: every VM has its phases
  const json = await vmconvoy('report', batch, '--json');
  assert.equal(json.code, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as Array<Record<string, string | number | null>>;
  assert.equal(rows.length, 4);
  for (const row of rows) {
    assert.ok(typeof row.upload_s === 'number' && row.upload_s > 0, `${row.name} uploaded: ${row.upload_s}`);
    assert.ok(typeof row.conversion_s === 'number', `${row.name} converted: ${row.conversion_s}`);
  }
  const legacy = rows.find((r) => r.name === 'legacy-01')!;
  assert.equal(legacy.status, 'Failed');
  assert.equal(legacy.validation_s, null, 'the failed VM never reached validation');
  assert.ok(typeof rows.find((r) => r.name === 'web-01')!.validation_s === 'number');

  // --- the HTML report, written by the binary, opened with no network
  const htmlFile = path.join(dir.dir, `${batch}.html`);
  const html = await vmconvoy('report', batch, '--format', 'html', '--out', htmlFile);
  assert.equal(html.code, 0, html.stderr);
  assert.match(html.stderr + html.stdout, /report of 4 VMs written to/);
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (npm run provision does)`);
  await mkdir(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  try {
    const context = await browser.newContext({ offline: true, viewport: { width: 1300, height: 900 } });
    const page = await context.newPage();
    const fileUrl = pathToFileURL(htmlFile).href;
    const requests: string[] = [];
    page.on('request', (r) => {
      if (r.url() !== fileUrl) requests.push(r.url());
    });
    await page.goto(fileUrl);
    const shot = path.join(ARTIFACTS, `report-${batch}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`[report] screenshot: ${shot}`);
    assert.deepEqual(requests, [], 'the page loads nothing');
    // The page's own styles apply (a mangled style sheet leaves every bar black).
    assert.equal(
      await page
        .locator('svg.timeline rect.phase-upload')
        .first()
        .evaluate((r) => (globalThis as unknown as BrowserGlobals).getComputedStyle(r).fill),
      'rgb(59, 130, 246)'
    );
    assert.doesNotMatch(await page.locator('body').innerText(), /\\n/, 'no escaped line breaks in the text');

    const timeline = await page.locator('svg.timeline g.vm-row').evaluateAll((nodes) =>
      (nodes as unknown as DomRow[]).map((g) => ({
        vm: g.getAttribute('data-vm'),
        bars: g.querySelectorAll('rect.phase').length,
        seconds: Object.fromEntries(
          ['upload', 'slot-wait', 'conversion', 'validation', 'cleanup'].map((p) => [p, g.getAttribute(`data-${p}-s`)])
        ),
        width: g.getBoundingClientRect().width,
      }))
    );
    assert.deepEqual(timeline.map((r) => r.vm).sort(), rows.map((r) => r.name).sort(), 'one timeline row per VM');
    for (const row of rows) {
      const drawn = timeline.find((t) => t.vm === row.name)!;
      assert.ok(drawn.bars >= 3 && drawn.width > 0, `${row.name}: ${drawn.bars} bars drawn`);
      for (const phase of PHASES) {
        const dom = drawn.seconds[phase.replace('_', '-')];
        const fromJson = row[`${phase}_s`];
        assert.equal(dom === '' ? null : Number(dom), fromJson, `${row.name} ${phase}: DOM ${dom}, JSON ${fromJson}`);
      }
    }
    const failure = page.locator('#failures tr[data-vm="legacy-01"]');
    assert.match(await failure.innerText(), /Unsupported kernel version 2\.6\.18/);
    assert.match(await failure.innerText(), /ConversionFailed/);
    assert.equal(await page.locator('#failures tbody tr').count(), 1);
    assert.ok(await page.locator('svg.usage-slots path.area').isVisible(), 'slots in use are drawn');
    assert.ok(Number(await page.locator('svg.usage-slots').getAttribute('data-peak')) >= 1);
    assert.ok(Number(await page.locator('svg.usage-uplink').getAttribute('data-peak')) > 0);
  } finally {
    await browser.close();
  }

  // --- the reports in S3, beside the VM folders (which cleanup emptied)
  for (const ext of ['json', 'html'] as const) {
    const key = batchReportKey('vmconvoy/', { batch, namespace: temporal.namespace }, ext);
    const out = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    const text = await out.Body!.transformToString();
    if (ext === 'json') {
      const stored = JSON.parse(text) as {
        schema: string;
        batch: string;
        vms: unknown[];
        failures: Array<{ name: string }>;
      };
      assert.deepEqual([stored.schema, stored.batch, stored.vms.length], ['vmconvoy.batch-report/1', batch, 4]);
      assert.deepEqual(
        stored.failures.map((f) => f.name),
        ['legacy-01']
      );
    } else {
      assert.match(text, /^<!doctype html>/);
      assert.equal(text.match(/<g class="vm-row /g)?.length, 4);
    }
  }

  // --- notifications: all signed; failure, both waves, the batch end (delivered again after a 503)
  const ended = await eventually(
    'the batch.ended delivery after its refusal',
    () => Promise.resolve(received.some((r) => r.event === 'batch.ended' && r.status === 204) ? true : undefined),
    120_000
  );
  assert.ok(ended);
  for (const r of received) assert.ok(signatureValid(r), `signature of ${r.event} ${r.delivery}`);
  const delivered = received.filter((r) => r.status === 204).map((r) => JSON.parse(r.body) as Record<string, unknown>);
  const failed = delivered.filter((e) => e.type === 'vm.failed');
  assert.deepEqual(
    failed.map((e) => (e.vm as { name: string }).name),
    ['legacy-01']
  );
  assert.match((failed[0]!.vm as { message: string }).message, /Unsupported kernel version 2\.6\.18/);
  assert.deepEqual(
    delivered.filter((e) => e.type === 'wave.ended').map((e) => e.wave),
    [1, 2]
  );
  const end = delivered.find((e) => e.type === 'batch.ended')!;
  assert.equal(end.state, 'failed');
  assert.deepEqual(end.counts, { completed: 3, failed: 1, cancelled: 0, total: 4 });
  assert.match(String((end.report as { bucketKeyHtml: string }).bucketKeyHtml), /batch-report\.html$/);
  const refused = received.find((r) => r.status === 503)!;
  assert.ok(
    received.some((r) => r.status === 204 && r.delivery === refused.delivery),
    'the refused delivery came again'
  );
  assert.ok(!received.some((r) => r.body.includes(SECRET)), 'the secret is never sent');
  assert.ok(
    received.every((r) => r.path === `/hook/${URL_TOKEN}`),
    'every event went to the receiver the workers have'
  );

  // Neither the HMAC secret nor the URL's token is in the batch's history or any delivery's.
  const handles = [fleetWorkflowId(batch), ...new Set(received.map((r) => r.delivery))].map((id) =>
    temporal.client.workflow.getHandle(id)
  );
  assert.deepEqual(await scanForSecrets(temporal.client, handles, [SECRET, URL_TOKEN]), []);
});
