/**
 * EC2's side of the upload: read the manifest through the presigned URL the caller gave, then every part
 * through the manifest's presigned URLs, over HTTP from the S3 server, as EC2 does. Unreadable (not there
 * yet, expired, tampered) means "keep waiting"; readable but wrong means the task fails. With
 * judge.content, an instance's whole image is then read and judged by its content (sim/judge/).
 */
import type { SimConfig } from '../config';
import type { Judgement } from '../judge/judge';
import { judgeUpload } from '../judge/judge';
import type { ConversionTask } from '../model/types';
import { checkImage, failureMarker } from './image-checks';
import type { ManifestPart } from './manifest';
import { NotAManifestError, checkManifest, parseManifest } from './manifest';

export type Inspection =
  | { kind: 'waiting'; reason: string }
  | { kind: 'rejected'; message: string }
  | { kind: 'ready'; failMessage?: string; judgement?: Judgement };

const TIMEOUT_MS = 10_000;

async function get(url: string, range?: string, method = 'GET'): Promise<Response> {
  return fetch(url, { method, headers: range ? { range } : undefined, signal: AbortSignal.timeout(TIMEOUT_MS) });
}

/** Bytes [start, end] of the image, read from the parts that hold them. */
async function readRange(parts: ManifestPart[], start: number, end: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    if (part.end < start || part.start > end) continue;
    const from = Math.max(start, part.start) - part.start;
    const to = Math.min(end, part.end) - part.start;
    const res = await get(part.getUrl, `bytes=${from}-${to}`);
    if (!res.ok) throw new Error(`part ${part.index} unreadable (HTTP ${res.status})`);
    const body = Buffer.from(await res.arrayBuffer());
    // A server that ignores Range sends the whole part.
    chunks.push(res.status === 206 ? body : body.subarray(from, to + 1));
  }
  return Buffer.concat(chunks);
}

/** Whole length of a part from a ranged GET (`Content-Range: bytes 0-0/N`), or its Content-Length. */
function partLength(res: Response): number {
  const total = /\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1];
  return Number(total ?? res.headers.get('content-length'));
}

export async function inspectUpload(task: ConversionTask, config: SimConfig): Promise<Inspection> {
  let xml: string;
  try {
    const res = await get(task.manifestUrl);
    if (!res.ok) return { kind: 'waiting', reason: `manifest unreadable (HTTP ${res.status})` };
    xml = await res.text();
  } catch (err) {
    return { kind: 'waiting', reason: `manifest unreachable (${(err as Error).message})` };
  }
  let manifest;
  try {
    manifest = parseManifest(xml);
  } catch (err) {
    if (err instanceof NotAManifestError) return { kind: 'waiting', reason: err.message };
    return { kind: 'rejected', message: (err as Error).message };
  }
  const problem = checkManifest(manifest, task);
  if (problem) return { kind: 'rejected', message: problem };
  try {
    // Every part must be there, whole: HEAD through its own presigned URL.
    for (const part of manifest.parts) {
      // HEAD through its own presigned URL; a manifest without head-url gets a 1-byte ranged GET instead.
      const res = part.headUrl ? await get(part.headUrl, undefined, 'HEAD') : await get(part.getUrl, 'bytes=0-0');
      await res.body?.cancel();
      if (!res.ok) return { kind: 'waiting', reason: `part ${part.index} not readable yet (HTTP ${res.status})` };
      const length = part.headUrl ? Number(res.headers.get('content-length')) : partLength(res);
      if (length !== part.end - part.start + 1) {
        return {
          kind: 'rejected',
          message: `ClientError: part ${part.index} has ${length} bytes, its byte-range says ${part.end - part.start + 1}`,
        };
      }
    }
    const size = manifest.size;
    const head = await readRange(manifest.parts, 0, Math.min(size, 1024 * 1024) - 1);
    const tail = size >= 512 ? await readRange(manifest.parts, size - 512, size - 1) : Buffer.alloc(0);
    const rejected = checkImage(task.format, head, tail);
    if (rejected) return { kind: 'rejected', message: rejected };
    // Data volumes (ImportVolume) need no operating system: only a boot disk is judged.
    const judgement =
      config.judge.content && task.kind === 'instance' ? await judgeUpload(task.format, manifest.parts) : undefined;
    return { kind: 'ready', failMessage: failureMarker(head), judgement };
  } catch (err) {
    return { kind: 'waiting', reason: (err as Error).message };
  }
}
