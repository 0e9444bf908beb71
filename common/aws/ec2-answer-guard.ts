/**
 * EC2 answers that are not answers: every EC2 response is bounded (XML only, size, time) before the SDK
 * parses it. Installed on the EC2 clients by clients.ts.
 */
import type { EC2Client } from '@aws-sdk/client-ec2';
import { pipeline, Readable, Transform } from 'node:stream';
import type { AwsNetworkLimits } from '../config';

/**
 * Thrown by the guard below for an answer EC2 never gives: a 2xx that is not XML (a proxy's or load
 * balancer's page), or a body over the size limit. Classified as retryable (activities/aws-errors.ts).
 */
export class NotAnAwsResponseError extends Error {
  override name = 'NotAnAwsResponse';
  constructor(
    readonly service: 'EC2' | 'S3',
    /** What came instead, in operator words; never any of the body. */
    readonly reason: string,
    readonly httpStatus: number
  ) {
    super(`the ${service} endpoint answered ${reason} (HTTP ${httpStatus}), not an ${service} response`);
  }
}

/** What the guard reads of the SDK's raw HTTP response (`HttpResponse` of @smithy/protocol-http). */
interface RawResponse {
  statusCode: number;
  headers: Record<string, string | undefined>;
  body?: unknown;
}

function isRawResponse(value: unknown): value is RawResponse {
  const r = value as Partial<RawResponse> | null;
  return typeof r === 'object' && r !== null && typeof r.statusCode === 'number' && typeof r.headers === 'object';
}

function timeoutError(ms: number): Error {
  return Object.assign(new Error(`no complete answer within ${ms} ms`), { name: 'TimeoutError' });
}

/**
 * The body, passed through unchanged while it stays within `ec2MaxResponseBytes` and ends before `deadline`;
 * otherwise the stream fails (and the socket is destroyed, never reused half-read).
 */
function boundedBody(body: Readable, status: number, limits: AwsNetworkLimits, deadline: number): Readable {
  let seen = 0;
  const guarded = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > limits.ec2MaxResponseBytes)
        callback(new NotAnAwsResponseError('EC2', `a body of more than ${limits.ec2MaxResponseBytes} bytes`, status));
      else callback(null, chunk);
    },
  });
  const timer = setTimeout(
    () => guarded.destroy(timeoutError(limits.ec2TimeoutMs)),
    Math.max(0, deadline - Date.now())
  );
  timer.unref();
  pipeline(body, guarded, () => clearTimeout(timer));
  return guarded;
}

/**
 * Bounds every EC2 answer before the SDK parses it, which it would otherwise do for any size and for as long
 * as the body trickles: a 2xx must be XML (EC2's Query API answers nothing else; an HTML page from a proxy
 * would parse to an empty result, read as "no such task/instance"), at most `ec2MaxResponseBytes` long, and
 * complete within `ec2TimeoutMs` of the request (NodeHttpHandler's requestTimeout ends when the headers
 * arrive). Runs innermost, between the HTTP handler and the deserializer, once per SDK attempt.
 */
export function guardEc2Answers(client: EC2Client, limits: AwsNetworkLimits): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const deadline = Date.now() + limits.ec2TimeoutMs;
      const out = await next(args);
      const response = out.response;
      if (!isRawResponse(response) || !(response.body instanceof Readable)) return out;
      const body = response.body;
      const refuse = (reason: string): never => {
        body.destroy();
        throw new NotAnAwsResponseError('EC2', reason, response.statusCode);
      };
      const type = response.headers['content-type'];
      if (response.statusCode < 300 && type !== undefined && !/\bxml\b/i.test(type))
        refuse(`Content-Type ${type.split(';')[0]!.trim().slice(0, 64)} instead of XML`);
      const length = Number(response.headers['content-length']);
      if (Number.isFinite(length) && length > limits.ec2MaxResponseBytes)
        refuse(`a body of ${length} bytes, over the ${limits.ec2MaxResponseBytes}-byte limit`);
      response.body = boundedBody(body, response.statusCode, limits, deadline);
      return out;
    },
    { step: 'deserialize', name: 'vmconvoyEc2AnswerGuard', priority: 'low' }
  );
}
