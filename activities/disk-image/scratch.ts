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

/**
 * What the conversions under the scratch root hold and will still hold, but those in `except`: each folder
 * that holds files is one conversion's (a VM's `<vm>/` for its boot disk, `<vm>/disk-N/` for a data disk),
 * holding its files and, while it runs, the rest of its reservation. `subtree` leaves out the folders
 * inside `except` too (a VM's whole claim).
 */
async function claimsBut(dir: string, except: string, subtree: boolean): Promise<{ held: number; pending: number }> {
  const perFolder = new Map<string, { held: number; reserved: number }>();
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    const folder = e.parentPath;
    if (folder === except || (subtree && folder.startsWith(except + path.sep))) continue;
    const claim = perFolder.get(folder) ?? { held: 0, reserved: 0 };
    const file = path.join(folder, e.name);
    claim.held += (await stat(file).catch(() => undefined))?.size ?? 0;
    if (e.name === RESERVATION) {
      claim.reserved = await readFile(file, 'utf8').then(
        (t) => Number((JSON.parse(t) as { bytes?: unknown }).bytes) || 0,
        () => 0
      );
    }
    perFolder.set(folder, claim);
  }
  let held = 0;
  let pending = 0;
  for (const c of perFolder.values()) {
    held += c.held;
    pending += Math.max(0, c.reserved - c.held);
  }
  return { held, pending };
}

/** The room the scratch root has for `folder`'s conversion(s), and what other conversions hold of it. */
async function roomFor(
  config: ScratchConfig,
  folder: string,
  subtree: boolean
): Promise<{ room: number; others: string; cap: string }> {
  await mkdir(config.dir, { recursive: true });
  const fs = await statfs(config.dir);
  const { held: othersHeld, pending: othersPending } = await claimsBut(config.dir, folder, subtree);
  const free = Math.max(0, fs.bavail * fs.bsize - othersPending);
  const room = config.capBytes === undefined ? free : Math.min(free, config.capBytes - othersHeld - othersPending);
  const others =
    othersHeld + othersPending > 0
      ? `; other conversions hold or will hold ${sizeText(othersHeld + othersPending)} of it`
      : '';
  const cap = config.capBytes === undefined ? '' : ` (capped at ${sizeText(config.capBytes)})`;
  return { room: Math.max(0, room), others, cap };
}

/**
 * Refuses (ScratchSpaceShort) before a conversion that the folder cannot hold: the disk's free space,
 * less what other running conversions still need, and the cap, less what the folder holds and will hold.
 */
export async function checkScratchSpace(config: ScratchConfig, folder: string, needed: number): Promise<void> {
  await mkdir(folder, { recursive: true });
  const { room, others, cap } = await roomFor(config, folder, false);
  if (needed <= room) return;
  throw ApplicationFailure.nonRetryable(
    `The scratch folder ${config.dir}${cap} has ${sizeText(room)} free for this conversion, but it needs up to ${sizeText(needed)}${others}. Free space there, raise the cap, or point the site worker's scratch folder at a larger disk, then run the VM again.`,
    FailureType.ScratchSpaceShort
  );
}

/**
 * Before a VM's first conversion: refuses (ScratchSpaceShort) when the scratch folder cannot hold the sum of
 * every conversion the VM makes (boot disk and data disks), naming each, so a VM never converts its boot
 * disk only to find no room for its data disks. Each conversion still checks and reserves its own at its
 * start (checkScratchSpace): this check reserves nothing. Creates no folder of the VM's.
 */
export async function checkVmScratchSpace(
  config: ScratchConfig,
  loc: ObjectLocation,
  parts: ReadonlyArray<{ what: string; bytes: number }>
): Promise<{ neededBytes: number; roomBytes: number }> {
  const needed = parts.reduce((sum, p) => sum + p.bytes, 0);
  const { room, others, cap } = await roomFor(config, scratchFolder(config.dir, loc), true);
  if (needed <= room) return { neededBytes: needed, roomBytes: room };
  const each = parts.map((p) => `${p.what} ${sizeText(p.bytes)}`).join(', ');
  throw ApplicationFailure.nonRetryable(
    `VM ${loc.vm} converts ${parts.length === 1 ? 'a disk' : `${parts.length} disks`} on the site worker (${each}): up to ${sizeText(needed)} of scratch space in total, but the scratch folder ${config.dir}${cap} has ${sizeText(room)} free${others}. Nothing was converted. Free space there, raise the cap, or point the site worker's scratch folder at a larger disk, then run the VM again.`,
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
