/**
 * The AWS clients every activity uses, built once per worker from the parsed config. Only endpoints and
 * credentials differ between the local environment and real AWS.
 */
import type { EC2ClientConfig } from '@aws-sdk/client-ec2';
import { EC2Client } from '@aws-sdk/client-ec2';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl, S3RequestPresigner } from '@aws-sdk/s3-request-presigner';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsConfig, AwsNetworkLimits } from '../config';
import { awsNetworkLimitsOf } from '../config';
import { guardEc2Answers } from './ec2-answer-guard';

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

type Ec2Credentials = EC2ClientConfig['credentials'];

export function credentialsOf(config: AwsConfig) {
  if (!config.accessKeyId || !config.secretAccessKey) return undefined; // the SDK's default chain
  return {
    accessKeyId: config.accessKeyId,
    secretAccessKey: config.secretAccessKey,
    sessionToken: config.sessionToken,
  };
}

/**
 * Requests that carry a checksum of their body (the part uploads: x-amz-checksum-crc32; Content-MD5 from
 * older callers) are signed with UNSIGNED-PAYLOAD: S3 checks the body against that checksum and refuses a
 * damaged one (BadDigest), so the SHA-256 of the body that SigV4 would otherwise compute (a second full
 * pass over every 10 MiB part) adds CPU and no integrity. Measured on the local S3 server: about 160 MB/s
 * with the signed SHA-256, 260 MB/s without.
 */
function signChecksummedBodiesUnsigned(client: S3Client): S3Client {
  client.middlewareStack.add(
    (next) => (args) => {
      const headers = (args.request as { headers?: Record<string, string> }).headers;
      if (headers && Object.keys(headers).some((h) => /^(content-md5|x-amz-checksum-crc32)$/i.test(h)))
        headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'vmconvoyUnsignedPayloadWithChecksum' }
  );
  return client;
}

function s3Client(config: AwsConfig, limits: AwsNetworkLimits, maxAttempts: number): S3Client {
  return signChecksummedBodiesUnsigned(
    new S3Client({
      region: config.region,
      // No limit on a whole request (a part PUT over a slow link takes long): only on silence.
      requestHandler: new NodeHttpHandler({
        connectionTimeout: limits.connectTimeoutMs,
        socketTimeout: limits.s3IdleTimeoutMs,
      }),
      endpoint: config.s3Endpoint,
      // Local S3 servers have no per-bucket DNS names.
      forcePathStyle: config.s3Endpoint !== undefined,
      // The uploader computes each part's CRC32 itself (off the event loop) and sends it; otherwise the SDK
      // would add checksums to every request, and presigned URLs would carry the checksum of an empty body.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      credentials: credentialsOf(config),
      maxAttempts,
      // No "Expect: 100-continue": it costs every part PUT a round trip to the server before its body goes
      // out (a full RTT per 10 MiB part over a WAN) to save sending bodies S3 would refuse, which is rare here.
      expectContinueHeader: false,
    })
  );
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

function ec2Client(
  config: AwsConfig,
  limits: AwsNetworkLimits,
  maxAttempts: number,
  credentials: Ec2Credentials = credentialsOf(config)
): EC2Client {
  const client = new EC2Client({
    region: config.region,
    endpoint: config.ec2Endpoint,
    credentials,
    maxAttempts,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: limits.connectTimeoutMs,
      // Until the response headers; the guard bounds the body.
      requestTimeout: limits.ec2TimeoutMs,
      throwOnRequestTimeout: true,
      // And silence at any point (the SDK has none unless AWS_ENABLE_DEFAULT_SOCKET_TIMEOUT_2026 is set).
      socketTimeout: limits.ec2TimeoutMs,
    }),
  });
  guardEc2Answers(client, limits);
  return client;
}

/** `ec2Credentials`: the EC2 clients' (a row's profile); S3 always uses the worker's own (the staging account). */
export function createAwsClients(config: AwsConfig, ec2Credentials?: Ec2Credentials): AwsClients {
  const limits = awsNetworkLimitsOf(config);
  const ec2 = ec2Client(config, limits, config.maxAttempts, ec2Credentials ?? credentialsOf(config));
  const ec2NoRetry = ec2Client(config, limits, 1, ec2Credentials ?? credentialsOf(config));
  const s3 = s3Client(config, limits, config.maxAttempts);
  const signer = s3Client(config, limits, 1);
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
