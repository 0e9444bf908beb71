/**
 * Stored inventory pages are capped in bytes as well as rows, so the fleet can load any page as one
 * activity result (Temporal refuses payloads over 2 MiB); the loader finds a row's page by the index, and
 * inventories stored before the index (fixed 100-row pages) still load.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities';
import type { InventoryRow } from '../../common/contracts/fleet';
import { INVENTORY_PAGE_SIZE } from '../../common/contracts/fleet';
import { vmSpecSchema } from '../../common/contracts/migration';
import {
  inventoryKeyFor,
  InventoryRowTooLargeError,
  MAX_PAGE_BYTES,
  pageOfRow,
  paginate,
  storeInventory,
} from '../../common/inventory-store';
import type { TestS3 } from '../helpers/testbed';
import { localAwsConfig, startS3 } from '../helpers/testbed';

let s3: TestS3;
let activities: ReturnType<typeof createActivities>;
before(async () => {
  s3 = await startS3();
  activities = createActivities({ config: localAwsConfig(s3), qemuImg: false });
});
after(async () => s3?.stop());

/** Rows at EC2's tag limits: 47 tags (vmconvoy adds 3) of 128-character keys and 256 two-byte characters. */
function heavyRows(n: number): InventoryRow[] {
  return Array.from({ length: n }, (_, row) => {
    const tags = Object.fromEntries(
      Array.from({ length: 47 }, (_, t) => [`${String(t).padStart(3, '0')}${'k'.repeat(125)}`, 'é'.repeat(256)])
    );
    const spec = vmSpecSchema.parse({
      name: `vm-${row}`,
      image: `/images/vm-${row}.vmdk`,
      architecture: 'x86_64',
      instanceType: 'm5.large',
      tags,
    });
    return { row, line: row + 2, spec };
  });
}

const lightRows = (n: number): InventoryRow[] =>
  Array.from({ length: n }, (_, row) => ({
    row,
    line: row + 2,
    spec: vmSpecSchema.parse({
      name: `vm-${row}`,
      image: `/i/${row}.raw`,
      architecture: 'x86_64',
      instanceType: 't3.micro',
    }),
  }));

test('pages are cut at 100 rows or MAX_PAGE_BYTES, whichever comes first; a row too large for any page is refused', () => {
  const light = paginate(lightRows(250));
  assert.deepEqual(light.index.pageFirstRows, [0, 100, 200], 'small rows: 100 per page as before');
  const heavy = paginate(heavyRows(100));
  // Uncapped, these 100 rows made one page of about 3 MB: over Temporal's 2 MiB payload limit.
  assert.ok(Buffer.byteLength(JSON.stringify(heavyRows(100))) > 2 * 1024 * 1024);
  assert.ok(heavy.bodies.length > 1);
  for (const body of heavy.bodies) assert.ok(Buffer.byteLength(body) <= MAX_PAGE_BYTES);
  assert.deepEqual(
    heavy.bodies.flatMap((b) => (JSON.parse(b) as InventoryRow[]).map((r) => r.row)),
    Array.from({ length: 100 }, (_, i) => i),
    'every row once, in order'
  );
  for (let row = 0; row < 100; row++) {
    const page = pageOfRow(heavy.index, row);
    assert.ok((JSON.parse(heavy.bodies[page]!) as InventoryRow[]).some((r) => r.row === row));
  }
  assert.equal(pageOfRow(undefined, 250), 2, 'no index: fixed pages');
  const [huge] = lightRows(1);
  huge!.spec.securityGroups = Array.from({ length: 20_000 }, (_, i) => `sg-${String(i).padStart(17, '0')}`);
  assert.throws(() => paginate([huge!]), InventoryRowTooLargeError);
});

test('the fleet loads any row of a byte-capped inventory, and of one stored with fixed pages before the index', async () => {
  const env = new MockActivityEnvironment();
  const key = inventoryKeyFor('vmconvoy/', 'heavy');
  const rows = heavyRows(60);
  await storeInventory(s3.client, s3.bucket, key, rows);
  for (const wanted of [0, 17, 33, 59]) {
    const page: InventoryRow[] = await env.run(activities.loadInventoryPage, {
      inventoryKey: key,
      page: Math.floor(wanted / INVENTORY_PAGE_SIZE),
      row: wanted,
    });
    assert.ok(Buffer.byteLength(JSON.stringify(page)) <= MAX_PAGE_BYTES, 'each result far below 2 MiB');
    assert.deepEqual(
      page.find((r) => r.row === wanted),
      rows[wanted]
    );
  }
  const index = JSON.parse(
    await (
      await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${key}index.json` }))
    ).Body!.transformToString()
  ) as { rows: number; pageFirstRows: number[] };
  assert.equal(index.rows, 60);
  assert.ok(index.pageFirstRows.length > 1);

  // An inventory written by an earlier version: fixed 100-row pages, no index.
  const legacyKey = inventoryKeyFor('vmconvoy/', 'legacy');
  const legacy = lightRows(250);
  for (let page = 0; page < 3; page++)
    await s3.client.send(
      new PutObjectCommand({
        Bucket: s3.bucket,
        Key: `${legacyKey}page-${String(page).padStart(6, '0')}.json`,
        Body: JSON.stringify(legacy.slice(page * 100, (page + 1) * 100)),
      })
    );
  const byRow = await env.run(activities.loadInventoryPage, { inventoryKey: legacyKey, page: 2, row: 201 });
  assert.deepEqual(byRow, legacy.slice(200));
  const byPage = await env.run(activities.loadInventoryPage, { inventoryKey: legacyKey, page: 1 });
  assert.deepEqual(byPage, legacy.slice(100, 200), 'a history recorded before the index asks by page');
});
