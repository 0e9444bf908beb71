/**
 * SigV4 verification: recompute the signature of the request as received, over exactly the headers the
 * client says it signed, and compare. A wrong key, region, body or header → AuthFailure, as EC2 answers.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Ec2Error } from '../model/errors';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

interface ReceivedRequest {
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/;

function fail(message: string): never {
  throw new Ec2Error('AuthFailure', message);
}

function parseAmzDate(value: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) fail('AWS was not able to validate the provided access credentials (bad X-Amz-Date)');
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

export async function verifySigV4(req: ReceivedRequest, creds: Credentials): Promise<void> {
  const auth = req.headers.authorization;
  if (!auth) fail('AWS was not able to validate the provided access credentials (the request is not signed)');
  const m = AUTH.exec(auth);
  if (!m) fail('AWS was not able to validate the provided access credentials (malformed Authorization header)');
  const [, accessKeyId, , region, service, signedHeaderList, signature] = m;
  if (accessKeyId !== creds.accessKeyId) fail('AWS was not able to validate the provided access credentials');
  if (region !== creds.region || service !== 'ec2') fail(`Credential should be scoped to a valid region (${creds.region}) and service ec2`);
  const amzDate = req.headers['x-amz-date'];
  if (typeof amzDate !== 'string') fail('AWS was not able to validate the provided access credentials (no X-Amz-Date)');
  const signingDate = parseAmzDate(amzDate);
  // EC2 refuses a signature more than 15 minutes off its own clock with RequestExpired (not AuthFailure):
  // the SDK recognises that code and corrects its clock skew before retrying.
  if (Math.abs(Date.now() - signingDate.getTime()) > 15 * 60 * 1000) {
    throw new Ec2Error('RequestExpired', `Request has expired. Timestamp date is ${amzDate}`);
  }

  const signedNames = signedHeaderList!.split(';');
  const headers: Record<string, string> = {};
  for (const name of signedNames) {
    const value = req.headers[name];
    if (value === undefined) fail(`Signed header ${name} is missing`);
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const bodyHash = createHash('sha256').update(req.body).digest('hex');
  if (headers['x-amz-content-sha256'] && headers['x-amz-content-sha256'] !== bodyHash) fail('The request body does not match its signature');

  const [hostname, port] = (headers.host ?? '').split(':');
  const signer = new SignatureV4({
    service: 'ec2',
    region: creds.region,
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
    sha256: Sha256,
  });
  const signed = await signer.sign(
    { method: req.method, protocol: 'http:', hostname: hostname ?? '', port: port ? Number(port) : undefined, path: req.path, query: req.query, headers, body: req.body },
    { signingDate, signableHeaders: new Set(signedNames) }
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization ?? ''))?.[1] ?? '';
  if (expected.length !== 64 || !timingSafeEqual(Buffer.from(expected), Buffer.from(signature!))) {
    fail('AWS was not able to validate the provided access credentials (signature mismatch)');
  }
}
