/**
 * The batch inventory in the staging bucket: normalised rows (VmSpec, wave-sorted) in pages of
 * INVENTORY_PAGE_SIZE under `<keyPrefix><batch>/inventory/`. The CLI writes it once per launch; the fleet
 * workflow loads one page at a time, so no payload ever carries the whole inventory.
 */
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import type { InventoryPageInput, InventoryRow } from './contracts/fleet';
import { INVENTORY_PAGE_SIZE } from './contracts/fleet';

export function inventoryKeyFor(keyPrefix: string, batch: string): string {
  return `${keyPrefix}${batch}/inventory/`;
}

function pageKey(inventoryKey: string, page: number): string {
  return `${inventoryKey}page-${String(page).padStart(6, '0')}.json`;
}

/** Writes every page; returns the inventory key. Pages are rewritten whole, so a relaunch is idempotent. */
export async function storeInventory(
  s3: S3Client,
  bucket: string,
  inventoryKey: string,
  rows: InventoryRow[]
): Promise<void> {
  const pages = Math.ceil(rows.length / INVENTORY_PAGE_SIZE);
  const writes: Array<Promise<unknown>> = [];
  for (let page = 0; page < pages; page++) {
    const body = JSON.stringify(rows.slice(page * INVENTORY_PAGE_SIZE, (page + 1) * INVENTORY_PAGE_SIZE));
    writes.push(
      s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: pageKey(inventoryKey, page),
          Body: body,
          ContentType: 'application/json',
        })
      )
    );
    // Bounded parallelism: eight pages in flight.
    if (writes.length >= 8) await Promise.all(writes.splice(0));
  }
  await Promise.all(writes);
}

export async function loadInventoryPage(
  s3: S3Client,
  bucket: string,
  input: InventoryPageInput
): Promise<InventoryRow[]> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: pageKey(input.inventoryKey, input.page) }));
  const text = await res.Body!.transformToString('utf8');
  return JSON.parse(text) as InventoryRow[];
}
