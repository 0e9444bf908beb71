/**
 * The uploaded image as EC2 sees it: every part fetched through its presigned get-url into one file, then
 * (for VMDK and VHD) turned into the raw disk with qemu-img, a different reader from vmconvoy's own.
 */
import { open } from 'node:fs/promises';
import type { ManifestPart } from '../conversion/manifest';
import { httpGet, isOk } from '../conversion/http-get';
import { runTool } from './tools';

const TIMEOUT_MS = 120_000;

/** Downloads the image the parts make up into `file` (each part at its byte range). Throws when a part cannot be read. */
export async function downloadImage(parts: ManifestPart[], file: string): Promise<void> {
  const handle = await open(file, 'w');
  try {
    for (const part of parts) {
      const res = await httpGet(part.getUrl, { timeoutMs: TIMEOUT_MS });
      if (!isOk(res)) {
        res.body.resume();
        throw new Error(`part ${part.index} unreadable (HTTP ${res.status})`);
      }
      let at = part.start;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        await handle.write(chunk, 0, chunk.length, at);
        at += chunk.length;
      }
    }
  } finally {
    await handle.close();
  }
}

const QEMU_FORMAT: Record<string, string> = { VMDK: 'vmdk', VHD: 'vpc' };

/**
 * The raw disk inside the image: the file itself for RAW, a qemu-img conversion (sparse) otherwise.
 * `{ error }` when the container's data cannot be read (the headers passed, the grains or blocks do not).
 */
export async function rawDisk(
  format: string,
  image: string,
  target: string
): Promise<{ file: string } | { error: string }> {
  const qemuFormat = QEMU_FORMAT[format];
  if (!qemuFormat) return { file: image };
  const { code, stderr } = await runTool('qemu-img', ['convert', '-q', '-f', qemuFormat, '-O', 'raw', image, target]);
  if (code !== 0) return { error: stderr.trim().split('\n')[0] ?? `qemu-img exited with ${code}` };
  return { file: target };
}
