/**
 * The VM Import manifest: an XML file beside the parts that gives EC2 presigned HEAD/GET/DELETE URLs for
 * each part (reference: EC2 API "Disk image manifest file"). Its URLs are bearer credentials, so the XML
 * never leaves this activity: the result carries the key and the expiry only.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import type { DiskFormat } from '../common/contracts/migration';
import type { ManifestInput, ManifestResult } from '../common/contracts/activity-io';
import { activityLog, heartbeat } from './activity-context';
import type { Presigner } from '../common/aws/clients';
import { awsCall } from './aws-call';
import { manifestKey, partKey, partRanges } from '../common/object-keys';
import { urlExpiry } from './url-expiry';
import { version as packageVersion } from '../package.json';

export const MANIFEST_VERSION = '2010-11-15';
/** The manifest names the tool that wrote it; the version is the package's own. */
export const IMPORTER = { name: 'vmconvoy', version: packageVersion, release: MANIFEST_VERSION } as const;

export interface ManifestPart {
  index: number;
  start: number;
  /** Inclusive. */
  end: number;
  key: string;
  headUrl: string;
  getUrl: string;
  deleteUrl: string;
}

export interface ManifestSpec {
  format: DiskFormat;
  /** File length = sum of the parts. */
  imageBytes: number;
  volumeSizeGib: number;
  selfDestructUrl: string;
  parts: ManifestPart[];
  importer?: { name: string; version: string; release: string };
}

export function escapeXml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c
  );
}

/** What the manifest says before its parts: every field but the parts' URLs. */
export type ManifestHead = Omit<ManifestSpec, 'parts'> & { partCount: number };

/** The manifest up to and including `<parts count="N">`. */
export function manifestHeadXml(head: ManifestHead): string {
  const importer = head.importer ?? IMPORTER;
  const e = escapeXml;
  return [
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>',
    '<manifest>',
    `  <version>${MANIFEST_VERSION}</version>`,
    `  <file-format>${e(head.format)}</file-format>`,
    '  <importer>',
    `    <name>${e(importer.name)}</name>`,
    `    <version>${e(importer.version)}</version>`,
    `    <release>${e(importer.release)}</release>`,
    '  </importer>',
    `  <self-destruct-url>${e(head.selfDestructUrl)}</self-destruct-url>`,
    '  <import>',
    `    <size>${head.imageBytes}</size>`,
    `    <volume-size>${head.volumeSizeGib}</volume-size>`,
    `    <parts count="${head.partCount}">`,
    '',
  ].join('\n');
}

/** One `<part>` element. */
export function manifestPartXml(part: ManifestPart): string {
  const e = escapeXml;
  return [
    `      <part index="${part.index}">`,
    `        <byte-range start="${part.start}" end="${part.end}"/>`,
    `        <key>${e(part.key)}</key>`,
    `        <head-url>${e(part.headUrl)}</head-url>`,
    `        <get-url>${e(part.getUrl)}</get-url>`,
    `        <delete-url>${e(part.deleteUrl)}</delete-url>`,
    '      </part>',
    '',
  ].join('\n');
}

export const MANIFEST_TAIL_XML = '    </parts>\n  </import>\n</manifest>\n';

/** The manifest document in one string; pure, so tests can parse it back. Small manifests only (see below). */
export function buildManifestXml(spec: ManifestSpec): string {
  const { parts, ...head } = spec;
  return (
    manifestHeadXml({ ...head, partCount: parts.length }) + parts.map(manifestPartXml).join('') + MANIFEST_TAIL_XML
  );
}

export interface ManifestDeps {
  s3: S3Client;
  presigner: Presigner;
  bucket: string;
  keyPrefix: string;
}

/**
 * Parts presigned and rendered at a time: ~5 KB of XML each with session-token URLs, so a batch is a few
 * MB of strings whatever the image's size.
 */
const PARTS_PER_BATCH = 1000;
/** Multipart upload part size for the manifest (a 2 TiB image's manifest is over 1 GB). */
const MANIFEST_UPLOAD_PART_BYTES = 16 * 1024 * 1024;

/**
 * The manifest as a stream of XML chunks, its parts presigned a batch at a time. A 2 TiB image in 10 MiB
 * parts has 209,716 parts and three URLs each; with a session token (~1.1 KB) in every URL the document is
 * over 1 GB, longer than the longest string V8 can hold (2^29 - 24 characters), so it never exists whole.
 */
export async function* manifestChunks(
  deps: ManifestDeps,
  head: Omit<ManifestHead, 'partCount'>,
  input: Pick<ManifestInput, 'batch' | 'vm' | 'imageBytes' | 'partSizeBytes'>,
  expiresInSeconds: number
): AsyncGenerator<Buffer> {
  const ranges = partRanges(input.imageBytes, input.partSizeBytes);
  yield Buffer.from(manifestHeadXml({ ...head, partCount: ranges.length }));
  for (let from = 0; from < ranges.length; from += PARTS_PER_BATCH) {
    const batch = ranges.slice(from, from + PARTS_PER_BATCH);
    const keys = batch.map((r) => partKey(deps.keyPrefix, input, r.index));
    const presign = (method: 'GET' | 'HEAD' | 'DELETE'): Promise<string[]> =>
      deps.presigner.presignMany(method, deps.bucket, keys, expiresInSeconds);
    const [headUrls, getUrls, deleteUrls] = [await presign('HEAD'), await presign('GET'), await presign('DELETE')];
    let xml = '';
    batch.forEach((r, i) => {
      xml += manifestPartXml({
        index: r.index,
        start: r.start,
        end: r.end,
        key: keys[i]!,
        headUrl: headUrls[i]!,
        getUrl: getUrls[i]!,
        deleteUrl: deleteUrls[i]!,
      });
    });
    yield Buffer.from(xml);
    heartbeat({ manifestParts: from + batch.length });
  }
  yield Buffer.from(MANIFEST_TAIL_XML);
}

export async function writeManifest(deps: ManifestDeps, input: ManifestInput): Promise<ManifestResult> {
  const { bucket } = deps;
  const key = manifestKey(deps.keyPrefix, input);
  const expiry = await urlExpiry(deps.presigner, input.validUntil);
  const head = {
    format: input.format,
    imageBytes: input.imageBytes,
    volumeSizeGib: input.volumeSizeGib,
    selfDestructUrl: await deps.presigner.presign(
      new DeleteObjectCommand({ Bucket: bucket, Key: key }),
      expiry.expiresInSeconds
    ),
  };
  const parts = partRanges(input.imageBytes, input.partSizeBytes).length;
  await awsCall({ operation: `writing the manifest ${key}`, bucket }, async (abortSignal) => {
    // One PutObject when the manifest fits in one upload part, a multipart upload otherwise; streamed either
    // way. A failed multipart upload is aborted, so no part of it is left behind.
    const upload = new Upload({
      client: deps.s3,
      params: {
        Bucket: bucket,
        Key: key,
        Body: Readable.from(manifestChunks(deps, head, input, expiry.expiresInSeconds)),
        ContentType: 'application/xml',
      },
      partSize: MANIFEST_UPLOAD_PART_BYTES,
      queueSize: 2,
      leavePartsOnError: false,
    });
    const abort = (): void => void upload.abort();
    abortSignal?.addEventListener('abort', abort, { once: true });
    try {
      await upload.done();
    } finally {
      abortSignal?.removeEventListener('abort', abort);
    }
  });
  activityLog.info('manifest written', {
    batch: input.batch,
    vm: input.vm,
    key,
    parts,
    urlsExpireAt: expiry.expiresAt.toISOString(),
  });
  return { manifestKey: key, urlsExpireAt: expiry.expiresAt.toISOString(), warnings: expiry.warnings };
}
