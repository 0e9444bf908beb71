/**
 * The stream-optimized VMDK writer judged by a reader nobody here wrote: every produced file passes
 * `qemu-img check` and `qemu-img compare` equals it to its source disk, for sizes from one partial grain
 * to a 5 GiB disk with data at its end (past 4 GiB, where 32-bit offsets would wrap); a resumed writer
 * produces the same bytes as an uninterrupted one from every kind of record on.
 */
import assert from 'node:assert/strict';
import { copyFile, open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GRAIN_BYTES } from '../../activities/disk-image/stream-vmdk';
import type { StreamCheckpoint } from '../../activities/disk-image/stream-vmdk';
import { streamVmdk, writeStreamVmdk } from '../../activities/disk-image/stream-vmdk-file';
import { parseVmdkHeader, isStreamOptimized } from '../../activities/disk-image/vmdk-header';
import type { Region } from '../helpers/sparse-disks';
import { makeSparseDisk, qemuImgRun } from '../helpers/sparse-disks';
import { tempDir } from '../helpers/testbed';

const MiB = 1024 * 1024;
const QEMU_IMG = process.env.QEMU_IMG ?? 'qemu-img';
const GiB = 1024 * MiB;

interface Case {
  name: string;
  virtualBytes: number;
  regions: Region[];
}

const CASES: Case[] = [
  {
    name: 'one partial grain of random bytes',
    virtualBytes: 3 * 512,
    regions: [{ at: 0, bytes: 1536, kind: 'random' }],
  },
  {
    name: '96 MiB: random, text and zero regions, a grain table with one grain, the last sector',
    virtualBytes: 96 * MiB + 512 * 5,
    regions: [
      { at: 512, bytes: 3 * MiB, kind: 'random' },
      { at: 20 * MiB + 100, bytes: 5 * MiB, kind: 'text' },
      { at: 64 * MiB + GRAIN_BYTES * 3, bytes: 4096, kind: 'random' },
      { at: 96 * MiB + 512 * 4, bytes: 512, kind: 'text' },
    ],
  },
  {
    name: 'over 4 GiB: data across the 4 GiB mark and in the last, partial grain',
    virtualBytes: 5 * GiB + GRAIN_BYTES + 512 * 3,
    regions: [
      { at: 0, bytes: MiB, kind: 'text' },
      { at: 4 * GiB - 3 * MiB, bytes: 6 * MiB, kind: 'random' },
      { at: 5 * GiB - MiB, bytes: MiB, kind: 'text' },
      { at: 5 * GiB + GRAIN_BYTES, bytes: 512 * 3, kind: 'random' },
    ],
  },
];

describe('stream-optimized VMDK writer, judged by qemu-img', () => {
  let dir: { dir: string; remove(): Promise<void> };
  before(async () => {
    dir = await tempDir('vmconvoy-stream-vmdk-');
  });
  after(async () => {
    await dir?.remove();
  });

  for (const c of CASES) {
    it(`${c.name}: qemu-img check passes, compare finds the source disk, zero grains are not stored`, async () => {
      const raw = path.join(dir.dir, `${c.virtualBytes}.raw`);
      const vmdk = path.join(dir.dir, `${c.virtualBytes}.vmdk`);
      await makeSparseDisk(raw, c.virtualBytes, c.regions);
      const length = await writeStreamVmdk(raw, vmdk, { virtualBytes: c.virtualBytes, cid: 7 }, QEMU_IMG);
      assert.equal((await stat(vmdk)).size, length);

      const check = await qemuImgRun(['check', '-f', 'vmdk', vmdk]);
      assert.equal(check.code, 0, check.out);
      assert.match(check.out, /No errors were found/);
      const compare = await qemuImgRun(['compare', '-f', 'raw', '-F', 'vmdk', raw, vmdk]);
      assert.equal(compare.code, 0, compare.out);
      assert.match(compare.out, /Images are identical/);
      const info = JSON.parse((await qemuImgRun(['info', '--output=json', vmdk])).out) as {
        format: string;
        'virtual-size': number;
        'format-specific': { data: { 'create-type': string; extents: { compressed: boolean }[] } };
      };
      assert.equal(info.format, 'vmdk');
      assert.equal(info['virtual-size'], c.virtualBytes);
      assert.equal(info['format-specific'].data['create-type'], 'streamOptimized');
      assert.equal(info['format-specific'].data.extents[0]!.compressed, true);

      // The header says what VM Import and pre-flight look for; the footer copy says where the directory is.
      const handle = await open(vmdk, 'r');
      const head = Buffer.alloc(512);
      const footer = Buffer.alloc(512);
      await handle.read(head, 0, 512, 0);
      await handle.read(footer, 0, 512, length - 1024);
      await handle.close();
      assert.ok(isStreamOptimized(parseVmdkHeader(head)));
      assert.equal(parseVmdkHeader(head).gdOffset, 0xffffffffffffffffn);
      assert.ok(parseVmdkHeader(footer).gdOffset < BigInt(length / 512));

      // Only grains with data are stored: never more than the data (grain-rounded) plus markers and tables.
      const dataGrains = new Set<number>();
      for (const r of c.regions)
        for (let g = Math.floor(r.at / GRAIN_BYTES); g * GRAIN_BYTES < r.at + r.bytes; g++) dataGrains.add(g);
      const bound = dataGrains.size * (GRAIN_BYTES + 1024) + 1024 * 1024;
      assert.ok(length < bound, `${length} bytes for ${dataGrains.size} grains of data`);
    });
  }

  it('reading the holes or skipping them (qemu-img map) makes the same bytes', async () => {
    const c = CASES[1]!;
    const raw = path.join(dir.dir, `${c.virtualBytes}.raw`);
    const unmapped = path.join(dir.dir, 'unmapped.vmdk');
    await writeStreamVmdk(raw, unmapped, { virtualBytes: c.virtualBytes, cid: 7 });
    const mapped = await readFile(path.join(dir.dir, `${c.virtualBytes}.vmdk`));
    assert.ok((await readFile(unmapped)).equals(mapped));
  });

  it('compare is a real judge: a disk differing by one byte in a data grain is reported different', async () => {
    const c = CASES[1]!;
    const raw = path.join(dir.dir, `${c.virtualBytes}.raw`);
    const vmdk = path.join(dir.dir, `${c.virtualBytes}.vmdk`);
    const changed = path.join(dir.dir, 'changed.raw');
    await copyFile(raw, changed);
    const h = await open(changed, 'r+');
    await h.write(Buffer.from([0x5a]), 0, 1, 20 * MiB + 4000);
    await h.close();
    const compare = await qemuImgRun(['compare', '-f', 'raw', '-F', 'vmdk', changed, vmdk]);
    assert.equal(compare.code, 1, compare.out);
    assert.match(compare.out, /Content mismatch/);
  });

  it('a writer resumed from its checkpoint before any record (grain, grain table, tail) writes the same bytes on', async () => {
    const c = CASES[1]!;
    const raw = path.join(dir.dir, `${c.virtualBytes}.raw`);
    const layout = { virtualBytes: c.virtualBytes, cid: 7 };
    const full = await readFile(path.join(dir.dir, `${c.virtualBytes}.vmdk`));
    const handle = await open(raw, 'r');
    try {
      // Checkpoints before every grain table and the tail, and before every 20th grain.
      const points: { start: number; checkpoint: StreamCheckpoint; kind: string }[] = [];
      let n = 0;
      const first = streamVmdk(handle, layout);
      const writer = first.writer;
      for await (const r of first.records) {
        const kind = r.start === 0 ? 'lead' : r.bytes.readUInt32LE(8) === 0 ? 'metadata' : 'grain';
        if (kind !== 'grain' || n++ % 20 === 0) points.push({ start: r.start, checkpoint: writer.checkpoint(), kind });
      }
      assert.ok(points.filter((p) => p.kind === 'metadata').length >= 3, 'grain tables and the tail were visited');
      for (const p of points) {
        const resumed = streamVmdk(handle, layout, JSON.parse(JSON.stringify(p.checkpoint)) as StreamCheckpoint);
        const parts: Buffer[] = [];
        let at = p.start;
        for await (const r of resumed.records) {
          assert.equal(r.start, at, 'records follow each other');
          parts.push(Buffer.from(r.bytes));
          at += r.bytes.length;
        }
        assert.equal(at, full.length);
        assert.ok(Buffer.concat(parts).equals(full.subarray(p.start)), `resumed at ${p.start} (${p.kind})`);
      }
    } finally {
      await handle.close();
    }
  });
});
