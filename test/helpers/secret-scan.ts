/**
 * Secret hygiene: every event of every given workflow (all runs), payload bytes decoded as text, must not
 * contain a presigned-URL signature or credential, nor any of the given strings (user data, secret keys).
 */
import type { Client, WorkflowHandle } from '@temporalio/client';

/**
 * Query-string parameters that only presigned URLs carry, and access key IDs; each plain or percent-encoded
 * once or twice (a URL inside another URL, a form or a JSON body: `X-Amz-Signature%3D…`, `%26Signature%3D`).
 */
export const PRESIGN_MARKERS = [
  /X-Amz-Signature(?:=|%3D|%253D)/i,
  /X-Amz-Credential(?:=|%3D|%253D)/i,
  /X-Amz-Security-Token(?:=|%3D|%253D)/i,
  // `Signature=<removed>` is what redact() leaves: not a finding.
  /(?:[?&]|%3F|%26|%253F|%2526)Signature(?:=|%3D|%253D)(?!<removed>)/i,
  /AWSAccessKeyId(?:=|%3D|%253D)(?!<removed>)/i,
  // An access key ID (long-term AKIA…, temporary ASIA…) anywhere, e.g. in an encoded X-Amz-Credential.
  /(?:AKIA|ASIA)[A-Z0-9]{16}/,
];

/** The forms a given secret can take in a payload or a log line: as is, base64, percent-encoded. */
export function secretForms(secret: string): string[] {
  return [...new Set([secret, Buffer.from(secret).toString('base64'), encodeURIComponent(secret)])];
}

/** Flattens a history into text, decoding every bytes field (payload data, metadata) as UTF-8. */
export function historyText(value: unknown, out: string[] = []): string[] {
  if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (Array.isArray(value)) for (const v of value) historyText(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      historyText(v, out);
    }
  } else if (
    typeof value === 'string' ||
    typeof value === 'number' ||
    typeof value === 'boolean' ||
    typeof value === 'bigint'
  )
    out.push(String(value));
  return out;
}

export interface SecretFinding {
  workflowId: string;
  what: string;
}

export function findSecrets(workflowId: string, text: string, secrets: string[]): SecretFinding[] {
  const findings: SecretFinding[] = [];
  for (const marker of PRESIGN_MARKERS)
    if (marker.test(text)) findings.push({ workflowId, what: `presigned URL (${marker.source})` });
  for (const secret of secrets) {
    if (secretForms(secret).some((f) => f.length >= 8 && text.includes(f)))
      findings.push({ workflowId, what: `secret "${secret.slice(0, 4)}…"` });
  }
  return findings;
}

export async function scanForSecrets(
  client: Client,
  handles: WorkflowHandle[],
  secrets: string[]
): Promise<SecretFinding[]> {
  const findings: SecretFinding[] = [];
  for (const handle of handles) {
    // All runs of the ID (continue-as-new, retries), not only the latest.
    for await (const wf of client.workflow.list({ query: `WorkflowId = "${handle.workflowId}"` })) {
      const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
      findings.push(...findSecrets(wf.workflowId, historyText(history).join('\n'), secrets));
    }
  }
  return findings;
}
