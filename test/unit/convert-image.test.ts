/**
 * The site worker's conversion (activities/convert-image.ts) against real qemu-img: the output is a valid
 * stream-optimized VMDK of the same disk (qemu-img check and compare, tools nobody here wrote); a finished
 * conversion is kept by a retry (its marker), a worker killed mid-conversion leaves no converter running
 * and its partial file is redone; a marker whose file is not complete is not trusted; the scratch check
 * refuses before anything is written.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readdir, readFile, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { CONVERTED_NAME, convertImage } from '../../activities/convert-image';
import { discardScratch, scratchFolder } from '../../activities/disk-image/scratch';
import { preflight } from '../../activities/disk-image/preflight';
import { REPO_ROOT } from '../../dev/services';
import { makeImage } from '../helpers/images';
import { tempDir } from '../helpers/testbed';
import { until } from '../helpers/wait';

let tmp: { dir: string; remove(): Promise<void> };
let images: string;
let scratch: string;

before(async () => {
  tmp = await tempDir('vmconvoy-convert-');
  images = path.join(tmp.dir, 'images');
  scratch = path.join(tmp.dir, 'scratch');
  execFileSync('mkdir', ['-p', images, scratch]);
});
after(() => tmp.remove());

const loc = (vm: string) => ({ batch: 'b1', vm, namespace: 'default' });

async function converted(vm: string, image: string, qemuFormat = 'qcow2') {
  const pre = await preflight({ image }, { imageRoots: [images] });
  return convertImage(
    { scratch: { dir: scratch }, imageRoots: [images] },
    { ...loc(vm), image, imageIdentity: pre.imageIdentity, qemuFormat }
  );
}

/** qemu-img's own verdicts: the file is a sound VMDK and holds the same disk as the source. */
function assertSameDisk(source: string, sourceFormat: string, vmdk: string): void {
  execFileSync('qemu-img', ['check', '-f', 'vmdk', vmdk]);
  execFileSync('qemu-img', ['compare', '-f', sourceFormat, '-F', 'vmdk', source, vmdk]);
  const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', vmdk]).toString()) as {
    'format-specific': { data: { 'create-type': string } };
  };
  assert.equal(info['format-specific'].data['create-type'], 'streamOptimized');
}

describe('convertImage', () => {
  it('converts qcow2 and VHDX into a stream-optimized VMDK of the same disk, and a retry keeps it', async () => {
    for (const [kind, format] of [
      ['qcow2', 'qcow2'],
      ['vhdx', 'vhdx'],
    ] as const) {
      const image = await makeImage(images, `a.${format}`, kind, { virtualMiB: 32, randomMiB: 6 });
      const first = await converted(`keep-${kind}`, image, format);
      assert.equal(first.reused, false);
      assert.equal(first.image, path.join(scratchFolder(scratch, loc(`keep-${kind}`)), CONVERTED_NAME));
      assert.equal(first.imageBytes, (await stat(first.image)).size);
      assertSameDisk(image, format, first.image);
      const before = await stat(first.image);
      const again = await converted(`keep-${kind}`, image, format);
      assert.equal(again.reused, true, 'the marker says it is complete: not converted again');
      assert.deepEqual(again.imageIdentity, first.imageIdentity);
      assert.equal((await stat(again.image)).mtimeMs, before.mtimeMs);
    }
  });

  it('redoes a conversion whose file is not what its marker says (cut short after the marker)', async () => {
    const image = await makeImage(images, 'cut.qcow2', 'qcow2', { virtualMiB: 32, randomMiB: 6 });
    const first = await converted('cut', image);
    await truncate(first.image, 4096);
    const again = await converted('cut', image);
    assert.equal(again.reused, false);
    assertSameDisk(image, 'qcow2', again.image);
  });

  it('a worker killed mid-conversion leaves no qemu-img running, and the retry redoes the partial file', async () => {
    // Large enough that deflating it takes a while, so the kill lands during the conversion.
    const image = await makeImage(images, 'slow.qcow2', 'qcow2', { virtualMiB: 400, randomMiB: 384 });
    const pre = await preflight({ image }, { imageRoots: [images] });
    const args = [
      { scratch: { dir: scratch }, imageRoots: [images] },
      { ...loc('killed'), image, imageIdentity: pre.imageIdentity, qemuFormat: 'qcow2' },
    ];
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'test/helpers/convert-child.ts'), JSON.stringify(args)],
      {
        cwd: REPO_ROOT,
        stdio: 'ignore',
      }
    );
    const folder = scratchFolder(scratch, loc('killed'));
    const partial = path.join(folder, `${CONVERTED_NAME}.partial`);
    await until(
      () => stat(partial).then((s) => s.size),
      (size) => size > 1024 * 1024,
      { timeoutMs: 120_000, intervalMs: 50 }
    );
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    // qemu-img got the parent-death signal: nothing writes the partial file any more.
    await until(
      () => qemuWriters(partial),
      (n) => n === 0,
      { timeoutMs: 10_000, intervalMs: 100 }
    );
    const files = await readdir(folder);
    assert.ok(!files.includes(`${CONVERTED_NAME}.done`), 'no marker for a killed conversion');
    assert.ok(!files.includes(CONVERTED_NAME));
    const retry = await converted('killed', image);
    assert.equal(retry.reused, false, 'the partial file is redone');
    assert.deepEqual((await readdir(folder)).sort(), [CONVERTED_NAME, `${CONVERTED_NAME}.done`]);
    assertSameDisk(image, 'qcow2', retry.image);
    const marker = JSON.parse(await readFile(path.join(folder, `${CONVERTED_NAME}.done`), 'utf8')) as { bytes: number };
    assert.equal(marker.bytes, retry.imageBytes);
  });

  it('refuses before writing anything when the scratch cap is below the need, and discardScratch empties the folder', async () => {
    const image = await makeImage(images, 'capped.qcow2', 'qcow2', { virtualMiB: 32, randomMiB: 6 });
    const pre = await preflight({ image }, { imageRoots: [images] });
    assert.ok(pre.conversion && pre.conversion.scratchBytes > 6 * 1024 * 1024);
    await assert.rejects(
      convertImage(
        { scratch: { dir: scratch, capBytes: 2 * 1024 * 1024 }, imageRoots: [images] },
        { ...loc('capped'), image, imageIdentity: pre.imageIdentity, qemuFormat: 'qcow2' }
      ),
      (err: unknown) =>
        err instanceof ApplicationFailure &&
        err.type === 'ScratchSpaceShort' &&
        err.message.includes(`The scratch folder ${scratch} (capped at 2 MiB)`) &&
        /needs up to 7 MiB/.test(err.message) &&
        /other conversions hold or will hold/.test(err.message)
    );
    assert.deepEqual(await readdir(scratchFolder(scratch, loc('capped'))), []);
    for (const vm of ['keep-qcow2', 'keep-vhdx', 'cut', 'killed', 'capped'])
      await discardScratch({ dir: scratch }, loc(vm));
    assert.deepEqual(await readdir(scratch, { recursive: true }), ['ns=default']);
  });
});

/** Processes whose command line names `file` (a converter still writing it). */
async function qemuWriters(file: string): Promise<number> {
  let n = 0;
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('qemu-img') && cmd.includes(file)) n++;
  }
  return n;
}
