/**
 * The VM Import manifest: an XML file beside the parts that gives EC2 presigned HEAD/GET/DELETE URLs for
 * each part (reference: EC2 API "Disk image manifest file"). Its URLs are bearer credentials, so the XML
 * never leaves this activity: the result carries the key and the expiry only.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { DiskFormat, ManifestInput, ManifestResult } from '../common/contracts/migration';
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

/** The manifest document; pure, so tests can parse it back. */
export function buildManifestXml(spec: ManifestSpec): string {
  const importer = spec.importer ?? IMPORTER;
  const e = escapeXml;
  const lines = [
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>',
    '<manifest>',
    `  <version>${MANIFEST_VERSION}</version>`,
    `  <file-format>${e(spec.format)}</file-format>`,
    '  <importer>',
    `    <name>${e(importer.name)}</name>`,
    `    <version>${e(importer.version)}</version>`,
    `    <release>${e(importer.release)}</release>`,
    '  </importer>',
    `  <self-destruct-url>${e(spec.selfDestructUrl)}</self-destruct-url>`,
    '  <import>',
    `    <size>${spec.imageBytes}</size>`,
    `    <volume-size>${spec.volumeSizeGib}</volume-size>`,
    `    <parts count="${spec.parts.length}">`,
  ];
  for (const part of spec.parts) {
    lines.push(
      `      <part index="${part.index}">`,
      `        <byte-range start="${part.start}" end="${part.end}"/>`,
      `        <key>${e(part.key)}</key>`,
      `        <head-url>${e(part.headUrl)}</head-url>`,
      `        <get-url>${e(part.getUrl)}</get-url>`,
      `        <delete-url>${e(part.deleteUrl)}</delete-url>`,
      '      </part>'
    );
  }
  lines.push('    </parts>', '  </import>', '</manifest>', '');
  return lines.join('\n');
}

export interface ManifestDeps {
  s3: S3Client;
  presigner: Presigner;
  bucket: string;
  keyPrefix: string;
}

export async function writeManifest(deps: ManifestDeps, input: ManifestInput): Promise<ManifestResult> {
  const { bucket } = deps;
  const key = manifestKey(deps.keyPrefix, input);
  const expiry = await urlExpiry(deps.presigner, input.validUntil);

  const ranges = partRanges(input.imageBytes, input.partSizeBytes);
  const keys = ranges.map((r) => partKey(deps.keyPrefix, input, r.index));
  const presignAll = async (method: 'GET' | 'HEAD' | 'DELETE'): Promise<string[]> => {
    const urls = await deps.presigner.presignMany(method, bucket, keys, expiry.expiresInSeconds);
    heartbeat({ signed: method });
    return urls;
  };
  const [headUrls, getUrls, deleteUrls] = [
    await presignAll('HEAD'),
    await presignAll('GET'),
    await presignAll('DELETE'),
  ];
  const parts: ManifestPart[] = ranges.map((r, i) => ({
    index: r.index,
    start: r.start,
    end: r.end,
    key: keys[i]!,
    headUrl: headUrls[i]!,
    getUrl: getUrls[i]!,
    deleteUrl: deleteUrls[i]!,
  }));
  const xml = buildManifestXml({
    format: input.format,
    imageBytes: input.imageBytes,
    volumeSizeGib: input.volumeSizeGib,
    selfDestructUrl: await deps.presigner.presign(
      new DeleteObjectCommand({ Bucket: bucket, Key: key }),
      expiry.expiresInSeconds
    ),
    parts,
  });
  await awsCall({ operation: `writing the manifest ${key}`, bucket }, (abortSignal) =>
    deps.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: xml, ContentType: 'application/xml' }), {
      abortSignal,
    })
  );
  activityLog.info('manifest written', {
    batch: input.batch,
    vm: input.vm,
    key,
    parts: parts.length,
    urlsExpireAt: expiry.expiresAt.toISOString(),
  });
  return { manifestKey: key, urlsExpireAt: expiry.expiresAt.toISOString(), warnings: expiry.warnings };
}
