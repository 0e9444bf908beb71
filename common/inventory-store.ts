/**
 * The batch inventory in the staging bucket: normalised rows (VmSpec, wave-sorted) in pages of at most
 * INVENTORY_PAGE_SIZE rows and MAX_PAGE_BYTES bytes under `<keyPrefix><batch>/inventory/`, with an index
 * (`index.json`: the first row of every page). The CLI writes it once per launch; the fleet workflow loads
 * one page at a time (by row: the activity finds the page in the index), so no payload ever carries the
 * whole inventory, and no page comes near Temporal's 2 MiB payload limit whatever its rows hold.
 *
 * Inventories stored before the index existed have fixed pages of INVENTORY_PAGE_SIZE rows and no index:
 * they load as before.
 */
import { GetObjectCommand, NoSuchKey, PutObjectCommand } from '@aws-sdk/client-s3';
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

function indexKey(inventoryKey: string): string {
  return `${inventoryKey}index.json`;
}

/**
 * Bytes of JSON in one page at most: far below Temporal's 2 MiB payload limit (and its 512 KiB warning),
 * with room for the codec's and the protocol's overhead.
 */
export const MAX_PAGE_BYTES = 256 * 1024;

const INDEX_FORMAT = 'vmconvoy-inventory-index/1';
const indexSchema = z
  .object({
    format: z.literal(INDEX_FORMAT),
    rows: z.number().int().min(0),
    /** The first row of each page, ascending, starting at 0. */
    pageFirstRows: z.array(z.number().int().min(0)),
  })
  .strict();
export type InventoryIndex = z.infer<typeof indexSchema>;

/** A row too large for any page: the CLI refuses the inventory (no payload could carry it). */
export class InventoryRowTooLargeError extends Error {
  override name = 'InventoryRowTooLarge';
}

/** Rows cut into pages of at most `maxRows` rows and `maxBytes` bytes of JSON. Pure, for tests. */
export function paginate(
  rows: InventoryRow[],
  maxRows = INVENTORY_PAGE_SIZE,
  maxBytes = MAX_PAGE_BYTES
): { bodies: string[]; index: InventoryIndex } {
  const bodies: string[] = [];
  const pageFirstRows: number[] = [];
  let page: string[] = [];
  let bytes = 2; // []
  const flush = (): void => {
    if (page.length === 0) return;
    bodies.push(`[${page.join(',')}]`);
    page = [];
    bytes = 2;
  };
  rows.forEach((row, i) => {
    const json = JSON.stringify(row);
    const size = Buffer.byteLength(json);
    if (size + 2 > maxBytes)
      throw new InventoryRowTooLargeError(
        `line ${row.line} (${row.spec.name}) takes ${size} bytes stored; a row may take at most ${maxBytes - 2}: shorten its paths, security groups or tags`
      );
    if (page.length >= maxRows || bytes + size + (page.length > 0 ? 1 : 0) > maxBytes) flush();
    if (page.length === 0) pageFirstRows.push(i);
    bytes += size + (page.length > 0 ? 1 : 0);
    page.push(json);
  });
  flush();
  return { bodies, index: { format: INDEX_FORMAT, rows: rows.length, pageFirstRows } };
}

/**
 * Writes every page, then the index; returns when all are stored. Pages are rewritten whole, so a relaunch
 * is idempotent.
 */
export async function storeInventory(
  s3: S3Client,
  bucket: string,
  inventoryKey: string,
  rows: InventoryRow[]
): Promise<void> {
  const { bodies, index } = paginate(rows);
  const writes: Array<Promise<unknown>> = [];
  for (const [page, body] of bodies.entries()) {
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
  // Last: a loader finds the index only once every page it names exists.
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: indexKey(inventoryKey),
      Body: JSON.stringify(index),
      ContentType: 'application/json',
    })
  );
}

/** The page holding `row`: by the index, or by fixed INVENTORY_PAGE_SIZE pages when there is none. */
export function pageOfRow(index: InventoryIndex | undefined, row: number): number {
  if (!index) return Math.floor(row / INVENTORY_PAGE_SIZE);
  const starts = index.pageFirstRows;
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (starts[mid]! <= row) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

async function readIndex(
  s3: S3Client,
  bucket: string,
  inventoryKey: string,
  abortSignal?: AbortSignal
): Promise<InventoryIndex | undefined> {
  let text: string;
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: indexKey(inventoryKey) }), { abortSignal });
    text = res.Body ? await res.Body.transformToString('utf8') : '';
  } catch (err) {
    if (err instanceof NoSuchKey || (err as { name?: string }).name === 'NoSuchKey') return undefined; // stored before the index
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const checked = indexSchema.safeParse(parsed);
  if (!checked.success) {
    throw new InventoryPageInvalidError(
      `s3://${bucket}/${indexKey(inventoryKey)} is not an inventory index vmconvoy wrote`
    );
  }
  return checked.data;
}

/** A page as the CLI wrote it; anything else (edited, truncated, written by something else) is refused. */
const inventoryPageSchema = z.array(
  z.object({ row: z.number().int().min(0), line: z.number().int().min(1), spec: vmSpecSchema }).strict()
);

/** A stored page that is not what the CLI wrote: the batch cannot trust it. */
export class InventoryPageInvalidError extends Error {
  override name = 'InventoryPageInvalid';
}

/**
 * One page's text as stored: the page holding `input.row` when given (found in the index), else page
 * `input.page`. S3 errors are thrown as they come (the activity classifies them).
 */
export async function fetchInventoryPage(
  s3: S3Client,
  bucket: string,
  input: InventoryPageInput,
  abortSignal?: AbortSignal
): Promise<string> {
  const page =
    input.row === undefined
      ? input.page
      : pageOfRow(await readIndex(s3, bucket, input.inventoryKey, abortSignal), input.row);
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: pageKey(input.inventoryKey, page) }), {
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
