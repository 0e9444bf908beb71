/**
 * The AWS clients every activity uses, built once per worker from the parsed config. Only endpoints and
 * credentials differ between the local environment and real AWS.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl, S3RequestPresigner } from '@aws-sdk/s3-request-presigner';
import type { AwsConfig } from './config';

/** Presigns S3 requests for the manifest: URLs EC2 follows without our credentials. */
export interface Presigner {
  presign(
    command: GetObjectCommand | HeadObjectCommand | DeleteObjectCommand,
    expiresInSeconds: number
  ): Promise<string>;
  /**
   * Presigns one method for many keys of a bucket, ~10× faster than `presign` per key (it skips the SDK's
   * middleware stack after resolving the endpoint once): a 1 TiB image has 100,000 parts × 3 URLs.
   */
  presignMany(
    method: 'GET' | 'HEAD' | 'DELETE',
    bucket: string,
    keys: string[],
    expiresInSeconds: number
  ): Promise<string[]>;
  /** When the credentials that sign the URLs expire (temporary credentials); undefined = long-lived. */
  credentialsExpireAt(): Promise<Date | undefined>;
}

export interface AwsClients {
  ec2: EC2Client;
  /**
   * EC2 with `maxAttempts: 1`, for ImportInstance only: an SDK retry after a reset connection could create
   * a second task. The activity's own retry first looks for the task the lost attempt created.
   */
  ec2NoRetry: EC2Client;
  s3: S3Client;
  presigner: Presigner;
}

function credentialsOf(config: AwsConfig) {
  if (!config.accessKeyId || !config.secretAccessKey) return undefined; // the SDK's default chain
  return {
    accessKeyId: config.accessKeyId,
    secretAccessKey: config.secretAccessKey,
    sessionToken: config.sessionToken,
  };
}

function s3Client(config: AwsConfig, maxAttempts: number): S3Client {
  return new S3Client({
    region: config.region,
    endpoint: config.s3Endpoint,
    // Local S3 servers have no per-bucket DNS names.
    forcePathStyle: config.s3Endpoint !== undefined,
    // Otherwise the SDK adds CRC32 checksums local servers may not know, and presigned URLs would carry
    // the checksum of an empty body.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    credentials: credentialsOf(config),
    maxAttempts,
  });
}

type PresignRequest = Parameters<S3RequestPresigner['presign']>[0];

/** S3's key encoding in paths: every segment URI-encoded, including !'()*, slashes kept. */
function encodeKeyPath(key: string): string {
  return key
    .split('/')
    .map((segment) =>
      encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    )
    .join('/');
}

const PROBE_KEY = 'vmconvoy-endpoint-probe';

function createPresigner(signer: S3Client): Presigner {
  const presign: Presigner['presign'] = (command, expiresInSeconds) =>
    getSignedUrl(signer, command, { expiresIn: expiresInSeconds });
  const raw = new S3RequestPresigner({ ...signer.config });
  return {
    presign,
    async presignMany(method, bucket, keys, expiresInSeconds) {
      // Let the SDK resolve the endpoint (path-style or virtual-hosted, custom endpoint) once.
      const command = (Key: string) =>
        method === 'GET'
          ? new GetObjectCommand({ Bucket: bucket, Key })
          : method === 'HEAD'
            ? new HeadObjectCommand({ Bucket: bucket, Key })
            : new DeleteObjectCommand({ Bucket: bucket, Key });
      const probe = new URL(await presign(command(PROBE_KEY), expiresInSeconds));
      if (!probe.pathname.endsWith(`/${PROBE_KEY}`)) {
        // An endpoint shape we do not recognise: the slow, always-right way.
        const urls: string[] = [];
        for (const key of keys) urls.push(await presign(command(key), expiresInSeconds));
        return urls;
      }
      const basePath = probe.pathname.slice(0, -PROBE_KEY.length);
      const urls: string[] = [];
      for (const key of keys) {
        const request: PresignRequest = {
          method,
          protocol: probe.protocol,
          hostname: probe.hostname,
          port: probe.port ? Number(probe.port) : undefined,
          path: `${basePath}${encodeKeyPath(key)}`,
          headers: { host: probe.host },
          query: {},
        };
        const signed = await raw.presign(request, { expiresIn: expiresInSeconds });
        const query = Object.entries(signed.query ?? {})
          .flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v ?? '']]))
          .map(([k, v]) => `${encodeURIComponent(k ?? '')}=${encodeURIComponent(v ?? '')}`)
          .join('&');
        urls.push(`${probe.protocol}//${probe.host}${request.path}?${query}`);
      }
      return urls;
    },
    credentialsExpireAt: async () => (await signer.config.credentials()).expiration,
  };
}

export function createAwsClients(config: AwsConfig): AwsClients {
  const ec2Options = { region: config.region, endpoint: config.ec2Endpoint, credentials: credentialsOf(config) };
  const ec2 = new EC2Client({ ...ec2Options, maxAttempts: config.maxAttempts });
  const ec2NoRetry = new EC2Client({ ...ec2Options, maxAttempts: 1 });
  const s3 = s3Client(config, config.maxAttempts);
  const signer = s3Client(config, 1);
  return {
    ec2,
    ec2NoRetry,
    s3,
    presigner: createPresigner(signer),
  };
}

export function destroyAwsClients(clients: AwsClients): void {
  clients.ec2.destroy();
  clients.ec2NoRetry.destroy();
  clients.s3.destroy();
}
