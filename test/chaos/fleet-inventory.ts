/**
 * The chaos fleet: a pool of real guest disks (sfdisk, mke2fs -d, qemu-img into every container format,
 * several parts each; a qcow2 the site worker converts first, and an OVA uploaded from inside its tar) shared
 * by the inventory's rows, a guest whose kernel VM Import does not support (the
 * simulator fails it on its content, as EC2 does), and user data files carrying a secret the post-run scan
 * must never find in a history or a log line.
 */
import { execFile } from 'node:child_process';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeImage } from '../helpers/images';
import { makeOva } from '../helpers/ova';
import type { GuestContainer } from '../helpers/guest-images';
import { GUESTS, makeGuestImage } from '../helpers/guest-images';

/** EC2's verdict on the CentOS 4 guest's kernel (2.6.9-103.EL), older than anything VM Import supports. */
export const PLANNED_FAILURE = 'ClientError: Unsupported kernel version 2.6.9';

export interface ChaosVm {
  name: string;
  image: string;
  /** Bytes of the image files, data disks included. */
  imageBytes: number;
  /** Data disks (imported with ImportVolume and attached at /dev/sdf, ...): one task and one volume each. */
  dataDisks?: string[];
  wave: number;
  /** The terminal phase this VM must end in. */
  expected: 'Completed' | 'Failed';
  userDataFile?: string;
  /** Its inventory row asks for the boot check (start, status ok, stop). */
  bootCheck: boolean;
}

export interface ChaosFleet {
  csv: string;
  vms: ChaosVm[];
  /** Secrets that must appear in no history and no log (plain or base64): the user data. */
  secrets: string[];
  /**
   * The boot-check VM whose first run must fail validation (the driver stops its instance while the boot
   * check waits for it; disruptions.ts trapBootCheck), then complete on `vmconvoy retry`: the first one in
   * the last wave, so its wait overlaps that wave's other VMs instead of holding the next wave back.
   */
  validationRetryVm?: string;
}

export interface FleetOptions {
  dir: string;
  vms: number;
  /** Waves to spread the VMs over (wave n+1 starts when wave n has finished). */
  waves: number;
  /** One VM in this many fails its conversion on purpose. */
  failEvery: number;
  /** Size of the guest disks (at least 32 MiB); RAW and fixed VHD upload the whole disk, the others their data. */
  imageMiB: number;
  /** One good VM in this many asks for the boot check. @default 0 (none) */
  bootCheckEvery?: number;
}

/** Shape of the pool: every container ImportInstance takes; RAW and fixed VHD upload the whole disk. */
const POOL: Array<{ kind: GuestContainer; payloadMiB: number }> = [
  { kind: 'raw', payloadMiB: 4 },
  { kind: 'fixed-vhd', payloadMiB: 4 },
  { kind: 'stream-vmdk', payloadMiB: 16 },
  { kind: 'dynamic-vhd', payloadMiB: 16 },
];

export async function makeChaosFleet(opts: FleetOptions): Promise<ChaosFleet> {
  const imageDir = path.join(opts.dir, 'images');
  await mkdir(imageDir, { recursive: true });
  const secret = `vmconvoy-chaos-user-data-${Date.now().toString(36)}`;
  const userDataFile = path.join(opts.dir, 'user-data.sh');
  const userData = `#!/bin/sh\necho "${secret}" > /etc/motd\n`;
  await writeFile(userDataFile, userData);

  const sizeMiB = Math.max(32, opts.imageMiB);
  const good = await Promise.all(
    POOL.map(({ kind, payloadMiB }, i) =>
      makeGuestImage(imageDir, `pool-${i}-${kind}.img`, GUESTS.ubuntu2204, kind, {
        sizeMiB,
        payloadMiB: Math.min(payloadMiB, sizeMiB - 16),
      })
    )
  );
  // The formats EC2 does not take as they are: a qcow2 (converted on the worker, in its scratch folder, so a
  // kill mid-conversion is part of the run) and a one-disk OVA (its disk uploaded from its byte range).
  const qcow2 = path.join(imageDir, 'pool-qcow2.qcow2');
  await promisify(execFile)(process.env.QEMU_IMG ?? 'qemu-img', [
    'convert',
    '-f',
    'raw',
    '-O',
    'qcow2',
    good[0]!,
    qcow2,
  ]);
  const streamVmdk = good[POOL.findIndex((p) => p.kind === 'stream-vmdk')]!;
  const ova = await makeOva(imageDir, 'pool-ova', { disks: [streamVmdk], vmwOsType: 'ubuntu64Guest', cpus: 2 });
  good.push(qcow2, ova);
  const failing = await makeGuestImage(imageDir, 'pool-failing.raw', GUESTS.centos4, 'raw', { sizeMiB: 32 });
  // A data disk holds no guest: random bytes, sent as they are and imported with ImportVolume.
  const dataDisk = await makeImage(imageDir, 'pool-data.raw', 'raw', { virtualMiB: 16, randomMiB: 4 });
  const sizes = new Map<string, number>();
  for (const file of [...good, failing, dataDisk]) sizes.set(file, (await stat(file)).size);

  const perWave = Math.ceil(opts.vms / opts.waves);
  const vms: ChaosVm[] = [];
  for (let i = 0; i < opts.vms; i++) {
    const fails = opts.failEvery > 0 && i % opts.failEvery === opts.failEvery - 1;
    const image = fails ? failing : good[i % good.length]!;
    // One good VM in four also has a data disk (never with the OVA, which names its own disks).
    const dataDisks = !fails && i % 4 === 2 && !image.endsWith('.ova') ? [dataDisk] : undefined;
    vms.push({
      name: `vm-${String(i + 1).padStart(3, '0')}`,
      image,
      dataDisks,
      imageBytes: [image, ...(dataDisks ?? [])].reduce((sum, f) => sum + sizes.get(f)!, 0),
      wave: Math.floor(i / perWave) + 1,
      expected: fails ? 'Failed' : 'Completed',
      userDataFile: i % 7 === 0 ? userDataFile : undefined,
      bootCheck: !fails && (opts.bootCheckEvery ?? 0) > 0 && i % opts.bootCheckEvery! === 1,
    });
  }
  const lastWave = Math.max(...vms.map((v) => v.wave));
  const validationRetryVm = vms.find((v) => v.bootCheck && v.wave === lastWave)?.name;
  // inspection=skip: the planned failure must reach AWS (the simulator judges the guest and refuses its kernel),
  // and the pool's disks are kept small (no 250 MiB free) so a hundred VMs stay quick. The look inside the guest
  // has its own tests (test/unit/validate-guests.test.ts, test/integration/guest-preflight.test.ts).
  const lines = ['name,image,architecture,instance_type,wave,user_data_file,tags,boot_check,inspection'];
  for (const vm of vms)
    lines.push(
      `${vm.name},${[vm.image, ...(vm.dataDisks ?? [])].join(';')},x86_64,m3.large,${vm.wave},${vm.userDataFile ?? ''},team=chaos,${vm.bootCheck},skip`
    );
  const csv = path.join(opts.dir, 'chaos.csv');
  await writeFile(csv, `${lines.join('\n')}\n`);
  // The secret itself, and the whole file: ImportInstance carries the file base64-encoded.
  return { csv, vms, secrets: [secret, userData], validationRetryVm };
}
