/**
 * The Temporal Web UI in a real browser (Debian's chromium driven by playwright-core; no browser
 * download): after a batch of VMs ran, the workflow list filtered by `MigrationBatch="<batch>"` shows
 * every VM workflow of the batch, and filtering by `MigrationPhase` finds them in their phase. The screenshots are kept in
 * test-artifacts/ for a human to look at.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Worker } from '@temporalio/worker';
import { chromium } from 'playwright-core';
import { REPO_ROOT } from '../../dev/services';
import { createWorkers } from '../../worker/create-worker';
import { migrationBatchKey } from '../../workflows/search-attributes';
import type { MigrateVmInput } from '../../common/contracts/migration';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../../common/contracts/migration';
import { makeImage, RANDOM_IMAGE_ROW } from '../helpers/images';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import {
  localAwsConfig,
  startS3,
  startSim,
  startTemporal,
  tempDir,
  uniqueTaskQueue,
  workflowBundle,
} from '../helpers/testbed';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
const VMS = ['ui-web-01', 'ui-app-01', 'ui-db-01'];

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let dir: { dir: string; remove(): Promise<void> };
let workers: Worker[];
let running: Promise<unknown>;
let taskQueue: string;

before(async () => {
  [temporal, s3, sim, dir] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim({ config: { speed: { conversionBytesPerSecond: 1024 ** 3, stepSeconds: 0.2, pendingPollMs: 200 } } }),
    tempDir('vmconvoy-ui-'),
  ]);
  taskQueue = uniqueTaskQueue('ui');
  workers = await createWorkers({
    connection: temporal.nativeConnection,
    namespace: temporal.namespace,
    taskQueue,
    aws: localAwsConfig(s3, sim),
    workflowBundle: await workflowBundle(),
  });
  running = Promise.all(workers.map((w) => w.run()));
});
after(async () => {
  for (const w of workers ?? []) w.shutdown();
  await running;
  await Promise.all([sim?.stop(), s3?.stop(), dir?.remove()]);
  await temporal?.stop();
});

test('the Web UI lists every VM of a batch by its MigrationBatch, and filters them by MigrationPhase', async () => {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing: install it with \`apt-get install chromium\` (npm run provision does, as root)`
  );
  const ui = process.env.VMCONVOY_TEST_TEMPORAL_UI;
  assert.ok(ui, 'run through npm test: it starts the Temporal dev server with its Web UI');
  const batch = `ui-${Date.now().toString(36)}`;
  const image = await makeImage(dir.dir, 'ui.raw', 'raw', { virtualMiB: 4, randomMiB: 1 });
  const handles = await Promise.all(
    VMS.map((name) => {
      const input: MigrateVmInput = {
        batch,
        spec: vmSpecSchema.parse({
          ...RANDOM_IMAGE_ROW,
          name,
          image,
          architecture: 'x86_64',
          instanceType: 't2.micro',
        }),
        settings: {
          ...DEFAULT_SETTINGS,
          partSizeBytes: 1024 * 1024,
          pollInitialSeconds: 0.5,
          pollMaxSeconds: 1,
          deadlineSeconds: 600,
        },
      };
      return temporal.client.workflow.start('migrateVmWorkflow', {
        taskQueue,
        workflowId: `${batch}/${name}`,
        args: [input],
        typedSearchAttributes: [{ key: migrationBatchKey, value: batch }],
      });
    })
  );
  await Promise.all(handles.map((h) => h.result()));

  await mkdir(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    const query = encodeURIComponent(`MigrationBatch="${batch}"`);
    await page.goto(`${ui}/namespaces/${temporal.namespace}/workflows?query=${query}`);
    // Every VM's workflow ID is a link in the list (visibility is eventually consistent: allow a reload).
    for (const name of VMS) {
      const link = page.getByRole('link', { name: `${batch}/${name}` });
      await link
        .first()
        .waitFor({ timeout: 30_000 })
        .catch(async () => {
          await page.reload();
          await link.first().waitFor({ timeout: 30_000 });
        });
    }
    const listShot = path.join(ARTIFACTS, `web-ui-${batch}-list.png`);
    await page.screenshot({ path: listShot, fullPage: true });
    // Nothing of another batch: the filter is the batch's own.
    assert.equal(await page.getByRole('link', { name: new RegExp(`^(?!${batch}/).+/ui-`) }).count(), 0);

    // The phase, through the UI's own filter on MigrationPhase: all three are Completed.
    const byPhase = encodeURIComponent(`MigrationBatch="${batch}" AND MigrationPhase="Completed"`);
    await page.goto(`${ui}/namespaces/${temporal.namespace}/workflows?query=${byPhase}`);
    for (const name of VMS)
      await page
        .getByRole('link', { name: `${batch}/${name}` })
        .first()
        .waitFor({ timeout: 30_000 });
    await page.getByText('3 Workflows').first().waitFor({ timeout: 30_000 });
    const vmShot = path.join(ARTIFACTS, `web-ui-${batch}-completed.png`);
    await page.screenshot({ path: vmShot, fullPage: true });
    console.log(`[ui] screenshots: ${listShot} ${vmShot}`);
  } finally {
    await browser.close();
  }
});
