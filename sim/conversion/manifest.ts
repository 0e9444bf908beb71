/**
 * Reads a VM Import manifest and checks it against the ImportInstance/ImportVolume request, as EC2 does
 * before converting. The rules are the schema on AWS's "VM Import Manifest" page
 * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/manifest.html): `manifest` holds version,
 * file-format, importer (name, version, release), self-destruct-url and import (size, volume-size, parts
 * with a count and one or more `part index=N`, each with byte-range start/end, key, head-url, get-url and an
 * optional delete-url). That page documents no error messages, so every "The manifest is invalid (…)" text
 * here is the simulator's own wording.
 */
import { XMLParser } from 'fast-xml-parser';

export interface ManifestPart {
  index: number;
  start: number;
  /** Offset of the part's last byte (inclusive), after the normalisation described in parseManifest. */
  end: number;
  key: string;
  headUrl: string;
  getUrl: string;
  deleteUrl?: string;
}

export interface Manifest {
  version: string;
  fileFormat: string;
  /** Absent only when the document lacks the element (checkManifest then refuses it). */
  importer?: { name: string; version: string; release: string };
  selfDestructUrl?: string;
  size: number;
  volumeSize: number;
  parts: ManifestPart[];
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  isArray: (name) => name === 'part',
  parseTagValue: false,
});

type Node = Record<string, unknown>;
const str = (v: unknown): string => (typeof v === 'string' ? v.trim() : typeof v === 'number' ? String(v) : '');
const invalid = (detail: string): string => `ClientError: The manifest is invalid (${detail})`;

/**
 * The document behind the manifest URL is not a manifest at all (an image, an error page, half a file).
 * EC2 does not fail such a task: it keeps waiting, silently, until the task expires (aws-sdk-ruby#814).
 */
export class NotAManifestError extends Error {}

export function parseManifest(xml: string): Manifest {
  let doc: Node;
  try {
    doc = parser.parse(xml) as Node;
  } catch (err) {
    throw new NotAManifestError(`the manifest URL does not return XML (${(err as Error).message})`);
  }
  const root = doc.manifest as Node | undefined;
  if (!root || typeof root !== 'object')
    throw new NotAManifestError('the manifest URL returns a document without a <manifest> root element');
  const importNode = (root.import ?? {}) as Node;
  const partsNode = (importNode.parts ?? {}) as Node;
  const size = Number(str(importNode.size) || NaN);
  const parts = ((partsNode.part as Node[] | undefined) ?? []).map((p) => {
    const range = (p['byte-range'] ?? {}) as Node;
    const deleteUrl = str(p['delete-url']);
    return {
      index: Number(p['@_index']),
      start: Number(range['@_start']),
      end: Number(range['@_end']),
      key: str(p.key),
      headUrl: str(p['head-url']),
      getUrl: str(p['get-url']),
      ...(deleteUrl ? { deleteUrl } : {}),
    };
  });
  const declared = Number(partsNode['@_count']);
  if (!Number.isInteger(declared) || declared !== parts.length) {
    throw new Error(invalid(`parts count ${str(partsNode['@_count'])} but ${parts.length} parts listed`));
  }
  parts.sort((a, b) => a.index - b.index);
  // AWS's own second example ends its only range at `size` where the schema says "offset of a part's last
  // byte" (size - 1); EC2 evidently read it. The simulator accepts a last range ending at size and treats
  // it as ending at size - 1, so the part is then expected to hold size - start bytes.
  const last = parts[parts.length - 1];
  if (last && last.end === size) last.end = size - 1;
  const importerNode = root.importer as Node | undefined;
  return {
    version: str(root.version),
    fileFormat: str(root['file-format']),
    importer:
      importerNode && typeof importerNode === 'object'
        ? { name: str(importerNode.name), version: str(importerNode.version), release: str(importerNode.release) }
        : undefined,
    selfDestructUrl: root['self-destruct-url'] === undefined ? undefined : str(root['self-destruct-url']),
    size,
    volumeSize: Number(str(importNode['volume-size']) || NaN),
    parts,
  };
}

/** The elements the schema requires (minOccurs defaults to 1) that are missing or empty. */
function missingElements(m: Manifest): string[] {
  const missing: string[] = [];
  if (!m.version) missing.push('version');
  if (!m.fileFormat) missing.push('file-format');
  if (!m.importer) missing.push('importer');
  else for (const k of ['name', 'version', 'release'] as const) if (!m.importer[k]) missing.push(`importer/${k}`);
  if (!m.selfDestructUrl) missing.push('self-destruct-url');
  if (!Number.isInteger(m.size)) missing.push('import/size');
  if (!Number.isInteger(m.volumeSize)) missing.push('import/volume-size');
  if (m.parts.length === 0) missing.push('import/parts/part');
  for (const p of m.parts) {
    if (!Number.isInteger(p.start) || !Number.isInteger(p.end)) missing.push(`part ${p.index} byte-range start/end`);
    for (const [name, value] of [
      ['key', p.key],
      ['head-url', p.headUrl],
      ['get-url', p.getUrl],
    ] as const) {
      if (!value) missing.push(`part ${p.index} ${name}`);
    }
  }
  return missing;
}

/** The manifest must follow the schema, match the request, and its parts must tile the image exactly. */
export function checkManifest(
  m: Manifest,
  request: { format: string; bytes: number; volumeSizeGib: number }
): string | undefined {
  if (m.version && m.version !== '2010-11-15') return invalid(`unsupported version "${m.version}"`);
  const missing = missingElements(m);
  if (missing.length > 0) return invalid(`missing ${missing.join(', ')}`);
  if (m.fileFormat !== request.format)
    return invalid(`file-format ${m.fileFormat} does not match the requested format ${request.format}`);
  if (m.size !== request.bytes) return invalid(`import size ${m.size} does not match Image.Bytes ${request.bytes}`);
  if (m.volumeSize !== request.volumeSizeGib)
    return invalid(`volume-size ${m.volumeSize} does not match Volume.Size ${request.volumeSizeGib}`);
  let next = 0;
  for (const [i, part] of m.parts.entries()) {
    if (part.index !== i) return invalid(`part index ${part.index} where ${i} was expected`);
    if (part.start !== next || part.end < part.start)
      return invalid(`part ${i} byte-range ${part.start}-${part.end} does not continue at ${next}`);
    next = part.end + 1;
  }
  if (next !== m.size) return invalid(`parts cover ${next} bytes, import size is ${m.size}`);
  return undefined;
}
