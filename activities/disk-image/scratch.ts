/**
 * The site worker's scratch folder, where images are converted before their upload: one folder per VM at a
 * path that follows from the VM (so a retried conversion, on a restarted worker, finds its earlier work),
 * bounded by the disk's free space and an optional cap on everything the folder holds, emptied when the VM
 * ends.
 */
import { ApplicationFailure } from '@temporalio/common';
import { mkdir, readdir, readFile, rm, rmdir, stat, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ObjectLocation } from '../../common/contracts/activity-io';
import { FailureType } from '../../common/failures';
import { sizeText } from './rejections';

export interface ScratchConfig {
  /** The folder conversions write in. @default DEFAULT_SCRATCH_DIR */
  dir: string;
  /** The most the whole folder may hold, every VM's conversion together; unset = the disk's free space. */
  capBytes?: number;
}

/** Beside the user's other caches, not in a RAM-backed /tmp: converted images are as large as the data. */
export const DEFAULT_SCRATCH_DIR = path.join(os.homedir(), '.cache', 'vmconvoy', 'scratch');

/** The file a reservation is kept in: the space a running conversion will still need. */
export const RESERVATION = 'reserved.json';

/** `<dir>/<namespace>/<batch>/<vm>`: batch and VM names are path-safe (VM_NAME_PATTERN), the namespace is encoded. */
export function scratchFolder(dir: string, loc: ObjectLocation): string {
  return path.join(dir, `ns=${encodeURIComponent(loc.namespace ?? '')}`, loc.batch, loc.vm);
}

/** Bytes of the files under `folder` (missing = 0). */
async function bytesUnder(folder: string): Promise<number> {
  let total = 0;
  const entries = await readdir(folder, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    total += (await stat(path.join(e.parentPath, e.name)).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

/** What a VM's folder holds, or will hold once its running conversion ends (its reservation). */
async function claimOf(folder: string): Promise<{ held: number; pending: number }> {
  const held = await bytesUnder(folder);
  const reserved = await readFile(path.join(folder, RESERVATION), 'utf8').then(
    (t) => Number((JSON.parse(t) as { bytes?: unknown }).bytes) || 0,
    () => 0
  );
  return { held, pending: Math.max(0, reserved - held) };
}

/** Every VM folder under the scratch root but `except`. */
async function vmFolders(dir: string, except: string): Promise<string[]> {
  const out: string[] = [];
  for (const ns of await readdir(dir).catch(() => [])) {
    for (const batch of await readdir(path.join(dir, ns)).catch(() => [])) {
      for (const vm of await readdir(path.join(dir, ns, batch)).catch(() => [])) {
        const folder = path.join(dir, ns, batch, vm);
        if (folder !== except) out.push(folder);
      }
    }
  }
  return out;
}

/**
 * Refuses (ScratchSpaceShort) before a conversion that the folder cannot hold: the disk's free space,
 * less what other running conversions still need, and the cap, less what the folder holds and will hold.
 */
export async function checkScratchSpace(config: ScratchConfig, folder: string, needed: number): Promise<void> {
  await mkdir(folder, { recursive: true });
  const fs = await statfs(folder);
  let othersHeld = 0;
  let othersPending = 0;
  for (const other of await vmFolders(config.dir, folder)) {
    const claim = await claimOf(other);
    othersHeld += claim.held;
    othersPending += claim.pending;
  }
  const free = Math.max(0, fs.bavail * fs.bsize - othersPending);
  const room = config.capBytes === undefined ? free : Math.min(free, config.capBytes - othersHeld - othersPending);
  if (needed <= room) return;
  const others =
    othersHeld + othersPending > 0
      ? `; other VMs' conversions hold or will hold ${sizeText(othersHeld + othersPending)} of it`
      : '';
  const cap = config.capBytes === undefined ? '' : ` (capped at ${sizeText(config.capBytes)})`;
  throw ApplicationFailure.nonRetryable(
    `The scratch folder ${config.dir}${cap} has ${sizeText(Math.max(0, room))} free for this conversion, but it needs up to ${sizeText(needed)}${others}. Free space there, raise the cap, or point the site worker's scratch folder at a larger disk, then run the VM again.`,
    FailureType.ScratchSpaceShort
  );
}

/** Deletes the VM's scratch folder (and its batch folder when empty); returns the bytes freed. */
export async function discardScratch(config: ScratchConfig, loc: ObjectLocation): Promise<number> {
  const folder = scratchFolder(config.dir, loc);
  const freed = await bytesUnder(folder);
  await rm(folder, { recursive: true, force: true });
  await rmdir(path.dirname(folder)).catch(() => undefined); // only if empty
  return freed;
}
