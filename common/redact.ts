/**
 * What must never reach a workflow history, a log line or a report: presigned query strings, access keys
 * and signatures. One function, used wherever text from AWS or from an error is kept.
 */

/**
 * Removes what must never reach a workflow history: presigned query strings (X-Amz-*, SigV2 Signature),
 * access keys and anything that looks like a secret, and bounds the length.
 */
export function redact(message: string): string {
  return message
    .replace(/(https?:\/\/[^\s?"'<>]+)\?[^\s"'<>]*/g, '$1?<query removed>')
    .replace(/X-Amz-[A-Za-z-]+=[^&\s"'<>]*/g, 'X-Amz-<removed>')
    .replace(/\b(Signature|AWSAccessKeyId|Credential|Security-Token)=[^&\s"'<>]*/gi, '$1=<removed>')
    .replace(/\b(AKIA|ASIA)[A-Z0-9]{12,}\b/g, '<access key id>')
    .slice(0, 1500);
}
