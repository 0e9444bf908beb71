/**
 * One uploader in its own process, so its peak RSS and CPU are its own: prints one JSON line
 * `{approach, bytes, seconds, cpuSeconds, peakRssBytes}`. Setup (clients, presigned URLs) happens before the clock starts.
 *
 *   node --import tsx bench/upload-child.ts <vmconvoy|lib-storage|raw> <image> <endpoint> <bucket> <key> <partBytes> <concurrency>
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import http from 'node:http';
import { createAwsClients } from '../common/aws/clients';
import { partRanges } from '../common/object-keys';
import { uploadImage } from '../activities/upload';
import { LOCAL_ACCESS_KEY_ID, LOCAL_REGION, LOCAL_SECRET_ACCESS_KEY } from '../dev/services';

type Approach = 'vmconvoy' | 'lib-storage' | 'raw';

async function main(): Promise<void> {
  const [approach, image, endpoint, bucket, key, partArg, concurrencyArg] = process.argv.slice(2) as [
    Approach,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const partSizeBytes = Number(partArg);
  const concurrency = Number(concurrencyArg);
  const { size } = await stat(image);
  // The S3 client exactly as the worker builds it.
  const clients = createAwsClients({
    region: LOCAL_REGION,
    s3Endpoint: endpoint,
    bucket,
    keyPrefix: `${key}/`,
    accessKeyId: LOCAL_ACCESS_KEY_ID,
    secretAccessKey: LOCAL_SECRET_ACCESS_KEY,
    maxAttempts: 3,
  });
  let seconds: number;
  const cpu0 = process.cpuUsage();
  if (approach === 'vmconvoy') {
    const t0 = performance.now();
    await uploadImage(
      { s3: clients.s3, bucket, keyPrefix: `${key}/` },
      { batch: 'bench', vm: 'upload', image, imageBytes: size, partSizeBytes, concurrency }
    );
    seconds = (performance.now() - t0) / 1000;
  } else if (approach === 'lib-storage') {
    const t0 = performance.now();
    await new Upload({
      client: clients.s3,
      params: { Bucket: bucket, Key: `${key}/image`, Body: createReadStream(image) },
      partSize: partSizeBytes,
      queueSize: concurrency,
    }).done();
    seconds = (performance.now() - t0) / 1000;
  } else {
    seconds = await rawUpload(clients.s3, image, size, bucket, key, partSizeBytes, concurrency);
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(`${JSON.stringify({ approach, bytes: size, seconds, cpuSeconds, peakRssBytes })}\n`);
}

/**
 * The ceiling: the same parts, PUT with plain node:http to presigned URLs (signed before the clock starts),
 * one reused buffer per lane, keep-alive sockets, no checksum, no SDK on the data path.
 */
async function rawUpload(
  s3: Parameters<typeof getSignedUrl>[0],
  image: string,
  size: number,
  bucket: string,
  key: string,
  partSizeBytes: number,
  concurrency: number
): Promise<number> {
  const parts = partRanges(size, partSizeBytes);
  const urls = await Promise.all(
    parts.map((p) =>
      getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: `${key}/raw.part${p.index}` }), { expiresIn: 3600 })
    )
  );
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const handle = await open(image, 'r');
  const t0 = performance.now();
  let next = 0;
  const lane = async (): Promise<void> => {
    const buffer = Buffer.allocUnsafe(partSizeBytes);
    for (;;) {
      const part = parts[next++];
      if (!part) return;
      const { bytesRead } = await handle.read(buffer, 0, part.length, part.start);
      await put(agent, urls[part.index]!, buffer.subarray(0, bytesRead));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const seconds = (performance.now() - t0) / 1000;
  await handle.close();
  agent.destroy();
  return seconds;
}

function put(agent: http.Agent, url: string, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'PUT', agent, headers: { 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`PUT ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
