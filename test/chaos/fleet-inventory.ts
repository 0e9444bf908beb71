/**
 * The chaos fleet: a pool of real disk images (qemu-img, mixed formats, several parts each) shared by the
 * inventory's rows, a few images the simulator fails on purpose, and user data files carrying a secret the
 * post-run scan must never find in a history or a log line.
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ImageKind } from '../helpers/images';
import { makeImage } from '../helpers/images';

/** The conversion failure the failing images ask the simulator for (an AWS message, as EC2 writes it). */
export const PLANNED_FAILURE = 'ClientError: Unsupported kernel version 2.6.18';

export interface ChaosVm {
  name: string;
  image: string;
  /** Bytes of the image file (what the upload must send once). */
  imageBytes: number;
  wave: number;
  /** The terminal phase this VM must end in. */
  expected: 'Completed' | 'Failed';
  userDataFile?: string;
}

export interface ChaosFleet {
  csv: string;
  vms: ChaosVm[];
  /** Secrets that must appear in no history and no log (plain or base64): the user data. */
  secrets: string[];
}

export interface FleetOptions {
  dir: string;
  vms: number;
  /** Waves to spread the VMs over (wave n+1 starts when wave n has finished). */
  waves: number;
  /** One VM in this many fails its conversion on purpose. */
  failEvery: number;
  /** Virtual size of the images; uploads are `randomMiB` of real data or the whole disk for RAW/fixed VHD. */
  imageMiB: number;
}

/** Shape of the pool: every format ImportInstance takes; RAW and fixed VHD upload the whole virtual disk. */
const POOL: Array<{ kind: ImageKind; randomMiB: number }> = [
  { kind: 'raw', randomMiB: 8 },
  { kind: 'fixed-vhd', randomMiB: 8 },
  { kind: 'stream-vmdk', randomMiB: 24 },
  { kind: 'dynamic-vhd', randomMiB: 24 },
];

export async function makeChaosFleet(opts: FleetOptions): Promise<ChaosFleet> {
  const imageDir = path.join(opts.dir, 'images');
  await mkdir(imageDir, { recursive: true });
  const secret = `vmconvoy-chaos-user-data-${Date.now().toString(36)}`;
  const userDataFile = path.join(opts.dir, 'user-data.sh');
  const userData = `#!/bin/sh\necho "${secret}" > /etc/motd\n`;
  await writeFile(userDataFile, userData);

  const good = await Promise.all(
    POOL.map(({ kind, randomMiB }, i) =>
      makeImage(imageDir, `pool-${i}-${kind}.img`, kind, {
        virtualMiB: opts.imageMiB,
        randomMiB: Math.min(randomMiB, opts.imageMiB),
      })
    )
  );
  const failing = await makeImage(imageDir, 'pool-failing.raw', 'raw', {
    virtualMiB: Math.min(16, opts.imageMiB),
    randomMiB: 2,
    marker: `VMCONVOY_SIM_FAIL=${PLANNED_FAILURE}`,
  });
  const sizes = new Map<string, number>();
  for (const file of [...good, failing]) sizes.set(file, (await stat(file)).size);

  const perWave = Math.ceil(opts.vms / opts.waves);
  const vms: ChaosVm[] = [];
  for (let i = 0; i < opts.vms; i++) {
    const fails = opts.failEvery > 0 && i % opts.failEvery === opts.failEvery - 1;
    const image = fails ? failing : good[i % good.length]!;
    vms.push({
      name: `vm-${String(i + 1).padStart(3, '0')}`,
      image,
      imageBytes: sizes.get(image)!,
      wave: Math.floor(i / perWave) + 1,
      expected: fails ? 'Failed' : 'Completed',
      userDataFile: i % 7 === 0 ? userDataFile : undefined,
    });
  }
  const lines = ['name,image,architecture,instance_type,wave,user_data_file,tags'];
  for (const vm of vms)
    lines.push(`${vm.name},${vm.image},x86_64,m3.large,${vm.wave},${vm.userDataFile ?? ''},team=chaos`);
  const csv = path.join(opts.dir, 'chaos.csv');
  await writeFile(csv, `${lines.join('\n')}\n`);
  // The secret itself, and the whole file: ImportInstance carries the file base64-encoded.
  return { csv, vms, secrets: [secret, userData] };
}
