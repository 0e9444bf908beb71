/**
 * Reads a VM Import manifest (reference: the `<manifest>` schema EC2 documents) and checks it against the
 * ImportInstance request, as EC2 does before converting.
 */
import { XMLParser } from 'fast-xml-parser';

export interface ManifestPart {
  index: number;
  start: number;
  end: number;
  key: string;
  headUrl: string;
  getUrl: string;
}

export interface Manifest {
  version: string;
  fileFormat: string;
  size: number;
  volumeSize: number;
  parts: ManifestPart[];
}

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', isArray: (name) => name === 'part', parseTagValue: false });

type Node = Record<string, unknown>;
const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');

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
  if (!root || typeof root !== 'object') throw new NotAManifestError('the manifest URL returns a document without a <manifest> root element');
  const importNode = (root.import ?? {}) as Node;
  const partsNode = (importNode.parts ?? {}) as Node;
  const parts = ((partsNode.part as Node[] | undefined) ?? []).map((p) => {
    const range = (p['byte-range'] ?? {}) as Node;
    return {
      index: Number(p['@_index']),
      start: Number(range['@_start']),
      end: Number(range['@_end']),
      key: str(p.key),
      headUrl: str(p['head-url']),
      getUrl: str(p['get-url']),
    };
  });
  const declared = Number(partsNode['@_count']);
  if (!Number.isInteger(declared) || declared !== parts.length) {
    throw new Error(`ClientError: The manifest is invalid (parts count ${str(partsNode['@_count'])} but ${parts.length} parts listed)`);
  }
  return {
    version: str(root.version),
    fileFormat: str(root['file-format']),
    size: Number(importNode.size),
    volumeSize: Number(importNode['volume-size']),
    parts: parts.sort((a, b) => a.index - b.index),
  };
}

/** The manifest must match the request and its parts must tile the image exactly; returns the problem. */
export function checkManifest(m: Manifest, request: { format: string; bytes: number; volumeSizeGib: number }): string | undefined {
  if (m.version !== '2010-11-15') return `ClientError: The manifest is invalid (unsupported version "${m.version}")`;
  if (m.fileFormat !== request.format) {
    return `ClientError: The manifest is invalid (file-format ${m.fileFormat} does not match the requested format ${request.format})`;
  }
  if (m.size !== request.bytes) return `ClientError: The manifest is invalid (import size ${m.size} does not match Image.Bytes ${request.bytes})`;
  if (m.volumeSize !== request.volumeSizeGib) {
    return `ClientError: The manifest is invalid (volume-size ${m.volumeSize} does not match Volume.Size ${request.volumeSizeGib})`;
  }
  let next = 0;
  for (const [i, part] of m.parts.entries()) {
    if (part.index !== i) return `ClientError: The manifest is invalid (part index ${part.index} where ${i} was expected)`;
    if (part.start !== next || part.end < part.start) {
      return `ClientError: The manifest is invalid (part ${i} byte-range ${part.start}-${part.end} does not continue at ${next})`;
    }
    if (!part.getUrl) return `ClientError: The manifest is invalid (part ${i} has no get-url)`;
    next = part.end + 1;
  }
  if (next !== m.size) return `ClientError: The manifest is invalid (parts cover ${next} bytes, import size is ${m.size})`;
  return undefined;
}
