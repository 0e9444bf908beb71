/**
 * How long presigned URLs live: until the VM's deadline, but never past SigV4's 7-day maximum nor past the
 * expiry of the temporary credentials that sign them (a URL dies with its credentials).
 */
import type { Presigner } from '../common/aws/clients';

export const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;
/** Never presign for less than this, even when the deadline is (nearly) past. */
const MIN_PRESIGN_SECONDS = 15 * 60;

export interface UrlExpiry {
  expiresAt: Date;
  expiresInSeconds: number;
  warnings: string[];
}

export function computeUrlExpiry(
  validUntil: string,
  credentialsExpireAt: Date | undefined,
  now: number = Date.now()
): UrlExpiry {
  const wanted = Date.parse(validUntil);
  if (Number.isNaN(wanted)) throw new TypeError(`validUntil is not an ISO time: ${validUntil}`);
  const warnings: string[] = [];
  let until = wanted;
  if (until > now + MAX_PRESIGN_SECONDS * 1000) {
    until = now + MAX_PRESIGN_SECONDS * 1000;
    warnings.push(
      `Presigned S3 URLs expire after 7 days (the SigV4 maximum), at ${new Date(until).toISOString()}, before the VM deadline ${new Date(wanted).toISOString()}; a conversion still reading the image then would fail.`
    );
  }
  if (credentialsExpireAt && credentialsExpireAt.getTime() < until) {
    until = credentialsExpireAt.getTime();
    warnings.push(
      `The AWS credentials signing the S3 URLs are temporary and expire at ${credentialsExpireAt.toISOString()}, before ${new Date(wanted).toISOString()}; EC2 cannot read the image after that. Use longer-lived credentials for the worker.`
    );
  }
  let seconds = Math.floor((until - now) / 1000);
  if (seconds < MIN_PRESIGN_SECONDS) {
    seconds = MIN_PRESIGN_SECONDS;
    warnings.push(
      `The VM deadline (${new Date(wanted).toISOString()}) is less than 15 minutes away; presigned URLs are valid for 15 minutes.`
    );
  }
  return { expiresAt: new Date(now + seconds * 1000), expiresInSeconds: seconds, warnings };
}

export async function urlExpiry(presigner: Presigner, validUntil: string): Promise<UrlExpiry> {
  return computeUrlExpiry(validUntil, await presigner.credentialsExpireAt());
}
