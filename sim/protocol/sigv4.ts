/**
 * SigV4 verification as AWS does it: the canonical request is rebuilt from the request as received, over
 * exactly the headers the client lists in SignedHeaders (nothing added), hashed into the string to sign and
 * signed with the HMAC-SHA256 key chain; the signature must match. Both forms are accepted: the
 * Authorization header and query-string ("presigned") auth with X-Amz-Algorithm/Credential/Date/
 * SignedHeaders/Signature[/Expires]. Written with node:crypto only, so the simulator does not verify with
 * the same signing code the SDK under test uses.
 * Spec: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Ec2Error } from '../model/errors';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** The service the scope must name. @default ec2 */
  service?: string;
}

export interface SignedRequest {
  method: string;
  /** The path as it came on the wire (still percent-encoded). */
  path: string;
  /** The query string as it came on the wire, without the `?`. */
  rawQuery: string;
  headers: IncomingHttpHeaders;
  /** Node's `rawHeaders` (name, value, name, value…): keeps repeated headers apart. */
  rawHeaders?: string[];
  body: Buffer;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** AWS's common errors: RequestExpired when a request's date stamp is more than 15 minutes off the service clock. */
export const MAX_SKEW_MS = 15 * 60 * 1000;
const AUTH_HEADER = /^AWS4-HMAC-SHA256 +Credential=([^,\s]+), *SignedHeaders=([^,\s]+), *Signature=([0-9a-f]{64})$/;
const INVALID_CREDENTIALS = 'AWS was not able to validate the provided access credentials';

function fail(detail?: string): never {
  throw new Ec2Error('AuthFailure', detail ? `${INVALID_CREDENTIALS} (${detail})` : INVALID_CREDENTIALS);
}

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

/** RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ is %XX (upper-case hex). */
export function uriEncode(value: string, keepSlash = false): string {
  return Array.from(Buffer.from(value, 'utf8'))
    .map((b) => {
      const c = String.fromCharCode(b);
      if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) return c;
      return `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
}

/** Percent-decoding without form rules: a literal `+` stays `+` (signers send a space as %20). */
function decode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    fail('malformed query string');
  }
}

function queryPairs(rawQuery: string): Array<[string, string]> {
  return rawQuery
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      return eq < 0 ? [decode(p), ''] : [decode(p.slice(0, eq)), decode(p.slice(eq + 1))];
    });
}

function canonicalQuery(pairs: Array<[string, string]>): string {
  return pairs
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** The path with `.`/`..` and empty segments resolved, each segment encoded again (every service but S3). */
function canonicalPath(path: string): string {
  const segments: string[] = [];
  for (const s of path.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') segments.pop();
    else segments.push(s);
  }
  const normalized = `/${segments.join('/')}${segments.length > 0 && path.endsWith('/') ? '/' : ''}`;
  return uriEncode(normalized, true);
}

/** Values of one header, each trimmed with inner runs of spaces collapsed, joined by commas. */
function headerValue(req: SignedRequest, name: string): string | undefined {
  const values: string[] = [];
  if (req.rawHeaders) {
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i]!.toLowerCase() === name) values.push(req.rawHeaders[i + 1]!);
    }
  } else {
    const v = req.headers[name];
    if (v !== undefined) values.push(...(Array.isArray(v) ? v : [v]));
  }
  if (values.length === 0) return undefined;
  return values.map((v) => v.trim().replace(/\s+/g, ' ')).join(',');
}

function parseAmzDate(value: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) fail(`X-Amz-Date ${value} is not of the form YYYYMMDDTHHMMSSZ`);
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

interface AuthParts {
  credential: string;
  signedHeaders: string;
  signature: string;
  amzDate: string;
  /** Query auth: seconds the signature is valid for. */
  expires?: number;
  /** The query pairs that take part in the canonical query (X-Amz-Signature left out for query auth). */
  pairs: Array<[string, string]>;
}

function authParts(req: SignedRequest): AuthParts {
  const pairs = queryPairs(req.rawQuery);
  const header = headerValue(req, 'authorization');
  if (header !== undefined) {
    const m = AUTH_HEADER.exec(header);
    if (!m) fail('malformed Authorization header');
    const amzDate = headerValue(req, 'x-amz-date') ?? dateHeader(req);
    return { credential: m[1]!, signedHeaders: m[2]!, signature: m[3]!, amzDate, pairs };
  }
  const q = new Map(pairs);
  if (!q.has('X-Amz-Algorithm')) fail('the request is not signed');
  if (q.get('X-Amz-Algorithm') !== ALGORITHM) fail(`unsupported X-Amz-Algorithm ${q.get('X-Amz-Algorithm')}`);
  const need = (name: string): string => {
    const v = q.get(name);
    if (!v) fail(`query-string auth without ${name}`);
    return v;
  };
  const signature = need('X-Amz-Signature');
  if (!/^[0-9a-f]{64}$/.test(signature)) fail('malformed X-Amz-Signature');
  const expiresText = q.get('X-Amz-Expires');
  const expires = expiresText === undefined ? undefined : Number(expiresText);
  if (expires !== undefined && (!Number.isInteger(expires) || expires < 1 || expires > 604800)) {
    fail(`X-Amz-Expires must be 1-604800 seconds (got ${expiresText})`);
  }
  return {
    credential: need('X-Amz-Credential'),
    signedHeaders: need('X-Amz-SignedHeaders'),
    signature,
    amzDate: need('X-Amz-Date'),
    expires,
    pairs: pairs.filter(([k]) => k !== 'X-Amz-Signature'),
  };
}

/** SigV4 also takes the date from the Date header when X-Amz-Date is absent (RFC 1123 → basic ISO 8601). */
function dateHeader(req: SignedRequest): string {
  const date = headerValue(req, 'date');
  const parsed = date ? new Date(date) : undefined;
  if (!parsed || Number.isNaN(parsed.getTime())) fail('no X-Amz-Date');
  return parsed
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

/**
 * Who claims to sign and for what (the Credential scope `<key>/<day>/<region>/<service>/aws4_request`),
 * read before verifying so the server can look the key's secret and account up; AuthFailure if malformed.
 */
export function credentialScopeOf(req: SignedRequest): { accessKeyId: string; region: string; service: string } {
  const scope = authParts(req).credential.split('/');
  if (scope.length !== 5 || scope[4] !== 'aws4_request') fail('malformed Credential');
  const [accessKeyId, , region, service] = scope as [string, string, string, string];
  return { accessKeyId, region, service };
}

/** Throws AuthFailure (or RequestExpired) unless the request carries a valid SigV4 signature for `creds`. */
export function verifySigV4(req: SignedRequest, creds: Credentials, now: number = Date.now()): void {
  const auth = authParts(req);
  const scope = auth.credential.split('/');
  if (scope.length !== 5 || scope[4] !== 'aws4_request') fail('malformed Credential');
  const [accessKeyId, day, region, service] = scope as [string, string, string, string];
  if (accessKeyId !== creds.accessKeyId) fail();
  const wanted = creds.service ?? 'ec2';
  if (region !== creds.region || service !== wanted) {
    throw new Ec2Error(
      'AuthFailure',
      `Credential should be scoped to a valid region (${creds.region}) and service ${wanted}`
    );
  }
  const signingDate = parseAmzDate(auth.amzDate);
  if (auth.amzDate.slice(0, 8) !== day) fail('the Credential date does not match X-Amz-Date');
  const skew = now - signingDate.getTime();
  // A presigned request is good until X-Amz-Date + X-Amz-Expires; a header-signed one for 15 minutes either way.
  if (skew < -MAX_SKEW_MS || (auth.expires === undefined && skew > MAX_SKEW_MS)) {
    throw new Ec2Error('RequestExpired', `Request has expired. Timestamp date is ${auth.amzDate}`);
  }
  if (auth.expires !== undefined && skew > auth.expires * 1000) {
    const expiredAt = new Date(signingDate.getTime() + auth.expires * 1000).toISOString();
    throw new Ec2Error('RequestExpired', `Request has expired. Expiry date is ${expiredAt}`);
  }

  const names = auth.signedHeaders.split(';');
  if (!names.includes('host')) fail('SignedHeaders must include host');
  const canonicalHeaders = names
    .map((name) => {
      const value = headerValue(req, name);
      if (value === undefined) fail(`signed header ${name} is missing`);
      return `${name}:${value}\n`;
    })
    .join('');
  const bodyHash = sha256(req.body);
  const declared = names.includes('x-amz-content-sha256') ? headerValue(req, 'x-amz-content-sha256') : undefined;
  if (declared !== undefined && declared !== bodyHash) fail('the request body does not match x-amz-content-sha256');
  const canonicalRequest = [
    req.method,
    canonicalPath(req.path),
    canonicalQuery(auth.pairs),
    canonicalHeaders,
    auth.signedHeaders,
    declared ?? bodyHash,
  ].join('\n');
  const credentialScope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = [ALGORITHM, auth.amzDate, credentialScope, sha256(canonicalRequest)].join('\n');
  const kDate = hmac(`AWS4${creds.secretAccessKey}`, day);
  const key = hmac(hmac(hmac(kDate, region), service), 'aws4_request');
  const expected = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  if (!timingSafeEqual(Buffer.from(expected), Buffer.from(auth.signature))) fail('signature mismatch');
}
