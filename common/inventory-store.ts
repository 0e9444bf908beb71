/**
 * The batch inventory in the staging bucket: normalised rows (VmSpec, wave-sorted) in pages of
 * INVENTORY_PAGE_SIZE under `<keyPrefix><batch>/inventory/`. The CLI writes it once per launch; the fleet
 * workflow loads one page at a time, so no payload ever carries the whole inventory.
 */
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import type { InventoryPageInput, InventoryRow } from './contracts/fleet';
import { INVENTORY_PAGE_SIZE } from './contracts/fleet';
import { vmSpecSchema } from './contracts/migration';
import { z } from 'zod';

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

/** A page as the CLI wrote it; anything else (edited, truncated, written by something else) is refused. */
const inventoryPageSchema = z.array(
  z.object({ row: z.number().int().min(0), line: z.number().int().min(1), spec: vmSpecSchema }).strict()
);

/** A stored page that is not what the CLI wrote: the batch cannot trust it. */
export class InventoryPageInvalidError extends Error {
  override name = 'InventoryPageInvalid';
}

/** One page's text as stored. S3 errors are thrown as they come (the activity classifies them). */
export async function fetchInventoryPage(
  s3: S3Client,
  bucket: string,
  input: InventoryPageInput,
  abortSignal?: AbortSignal
): Promise<string> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: pageKey(input.inventoryKey, input.page) }), {
    abortSignal,
  });
  return res.Body ? await res.Body.transformToString('utf8') : '';
}

/**
 * A page's rows, validated with the same schema the CLI's rows went through: the bucket is outside the
 * batch's control (anyone with write access to it could edit a page between launch and load), so nothing
 * read back is trusted.
 */
export function parseInventoryPage(text: string, where: string): InventoryRow[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new InventoryPageInvalidError(`${where} is not JSON (${text.length} bytes)`);
  }
  const checked = inventoryPageSchema.safeParse(parsed);
  if (!checked.success) {
    const first = checked.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.join('.') || '(page)'}: ${i.message}`)
      .join('; ');
    throw new InventoryPageInvalidError(`${where} is not an inventory page vmconvoy wrote (${first})`);
  }
  return checked.data;
}

/** Where a page lives, for messages. */
export function inventoryPageUri(bucket: string, input: InventoryPageInput): string {
  return `s3://${bucket}/${pageKey(input.inventoryKey, input.page)}`;
}
