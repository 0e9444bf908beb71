/**
 * Guests (test/helpers/guest-images.ts: sfdisk, mke2fs -d) in the containers pre-flight cannot read inside
 * or reads at an offset: a QCOW2 or VHDX made by qemu-img from the RAW disk, and an OVA (test/helpers/ova.ts)
 * whose boot disk is the stream-optimized VMDK qemu-img makes.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { GuestSpec } from './guest-images';
import { makeGuestImage } from './guest-images';
import { makeOva } from './ova';

const execFileAsync = promisify(execFile);

export type OtherContainer = 'qcow2' | 'vhdx' | 'ova';

/** `<dir>/<name>.<container>` holding `guest` (on a disk of `sizeMiB`); returns its path. */
export async function makeGuestIn(
  dir: string,
  name: string,
  guest: GuestSpec,
  container: OtherContainer,
  sizeMiB = 320
): Promise<string> {
  if (container === 'ova') {
    const disk = await makeGuestImage(dir, `${name}-disk1.vmdk`, guest, 'stream-vmdk', { sizeMiB });
    return makeOva(dir, name, { disks: [disk], vmwOsType: 'ubuntu64Guest', cpus: 2, memoryMiB: 4096 });
  }
  const raw = await makeGuestImage(dir, `${name}.src.raw`, guest, 'raw', { sizeMiB });
  const file = path.join(dir, `${name}.${container}`);
  await execFileAsync(process.env.QEMU_IMG ?? 'qemu-img', ['convert', '-q', '-f', 'raw', '-O', container, raw, file]);
  await rm(raw);
  return file;
}
