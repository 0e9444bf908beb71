/**
 * What must never reach a workflow history, a log line or a report: presigned query strings, access keys
 * and signatures. One function, used wherever text from AWS or from an error is kept.
 *
 * Text from AWS often carries a URL inside another URL or inside a JSON or form body, percent-encoded once
 * (`X-Amz-Signature%3D…`, `https%3A%2F%2F…%3F…`) or twice (`%253D`), so every pattern accepts the plain and
 * the encoded separators. Where a pattern cannot tell where an encoded value ends, it removes too much,
 * never too little.
 */

/** `=` plain, percent-encoded once or twice. */
const EQ = '(?:=|%3D|%253D)';
/** `?` plain, percent-encoded once or twice. */
const QUERY = '(?:\\?|%3F|%253F)';
/** `://` plain or encoded. */
const SCHEME_SEP = '(?::|%3A|%253A)(?:/|%2F|%252F){2}';
/** A value runs to the next plain `&` or the end of the token (an encoded `%26` stays inside: removed too). */
const VALUE = `[^&\\s"'<>]*`;

const URL_QUERY = new RegExp(`(https?${SCHEME_SEP}[^\\s?"'<>]*?)${QUERY}[^\\s"'<>]*`, 'gi');
const AMZ_PARAM = new RegExp(`X-Amz-[A-Za-z-]+${EQ}${VALUE}`, 'gi');
// No \b: after an encoded separator (`%26Signature`, `%3DAKIA…`) the previous character is a letter or digit.
const SECRET_PARAM = new RegExp(
  `(?<![A-Za-z])(Signature|AWSAccessKeyId|Credential|Security-Token|SessionToken)${EQ}${VALUE}`,
  'gi'
);
/** Access key IDs (long-term AKIA, temporary ASIA): 20 characters, wherever they stand. */
const ACCESS_KEY_ID = /(?:AKIA|ASIA)[A-Z0-9]{12,}/g;

/**
 * Removes what must never reach a workflow history: presigned query strings (X-Amz-*, SigV2 Signature),
 * access keys and anything that looks like a secret, plain or percent-encoded, and bounds the length.
 */
export function redact(message: string): string {
  return message
    .replace(URL_QUERY, '$1?<query removed>')
    .replace(AMZ_PARAM, 'X-Amz-<removed>')
    .replace(SECRET_PARAM, '$1=<removed>')
    .replace(ACCESS_KEY_ID, '<access key id>')
    .slice(0, 1500);
}
