/**
 * EC2's side of the upload: read the manifest through the presigned URL the caller gave, then every part
 * through the manifest's presigned URLs, over HTTP from the S3 server, as EC2 does. Unreadable (not there
 * yet, expired, tampered) means "keep waiting"; readable but wrong means the task fails. With
 * judge.content, an instance's whole image is then read and judged by its content (sim/judge/).
 */
import type { SimConfig } from '../config';
import type { HttpAnswer } from './http-get';
import { bodyOf, httpGet, isOk } from './http-get';
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

function get(url: string, range?: string, method: 'GET' | 'HEAD' = 'GET'): Promise<HttpAnswer> {
  return httpGet(url, { method, range, timeoutMs: TIMEOUT_MS });
}

/** Bytes [start, end] of the image, read from the parts that hold them. */
async function readRange(parts: ManifestPart[], start: number, end: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    if (part.end < start || part.start > end) continue;
    const from = Math.max(start, part.start) - part.start;
    const to = Math.min(end, part.end) - part.start;
    const res = await get(part.getUrl, `bytes=${from}-${to}`);
    const body = await bodyOf(res);
    if (!isOk(res)) throw new Error(`part ${part.index} unreadable (HTTP ${res.status})`);
    // A server that ignores Range sends the whole part.
    chunks.push(res.status === 206 ? body : body.subarray(from, to + 1));
  }
  return Buffer.concat(chunks);
}

/** Whole length of a part from a ranged GET (`Content-Range: bytes 0-0/N`), or its Content-Length. */
function partLength(res: HttpAnswer): number {
  const total = /\/(\d+)$/.exec(res.header('content-range') ?? '')?.[1];
  return Number(total ?? res.header('content-length'));
}

export async function inspectUpload(task: ConversionTask, config: SimConfig): Promise<Inspection> {
  let xml: string;
  try {
    const res = await get(task.manifestUrl);
    const body = await bodyOf(res);
    if (!isOk(res)) return { kind: 'waiting', reason: `manifest unreadable (HTTP ${res.status})` };
    xml = body.toString('utf8');
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
      let status: number;
      let length: number;
      if (part.headUrl) {
        const res = await get(part.headUrl, undefined, 'HEAD');
        status = res.status;
        length = Number(res.header('content-length'));
      } else {
        const res = await get(part.getUrl, 'bytes=0-0');
        await bodyOf(res);
        status = res.status;
        length = partLength(res);
      }
      if (status < 200 || status > 299)
        return { kind: 'waiting', reason: `part ${part.index} not readable yet (HTTP ${status})` };
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
