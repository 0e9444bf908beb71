/**
 * The simulator's reads of presigned S3 URLs, over node:http(s) rather than fetch: Node 22's fetch (its
 * bundled undici) throws an uncaught internal assertion (`Parser.finish`, "false == true") when the S3
 * server ends a connection after a HEAD or a cancelled body, which kills whatever process hosts the simulator.
 */
import type { IncomingMessage } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface HttpAnswer {
  status: number;
  header(name: string): string | undefined;
  /** The body as a stream (already drained for HEAD). */
  body: IncomingMessage;
}

export function httpGet(
  url: string,
  opts: { method?: 'GET' | 'HEAD'; range?: string; timeoutMs: number }
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(
      target,
      {
        method: opts.method ?? 'GET',
        headers: opts.range ? { range: opts.range } : undefined,
        timeout: opts.timeoutMs,
      },
      (res) => {
        if (opts.method === 'HEAD') res.resume();
        resolve({
          status: res.statusCode ?? 0,
          header: (name) => {
            const value = res.headers[name.toLowerCase()];
            return Array.isArray(value) ? value.join(', ') : value;
          },
          body: res,
        });
      }
    );
    req.on('timeout', () => req.destroy(new Error(`${opts.method ?? 'GET'} timed out after ${opts.timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The whole body. */
export async function bodyOf(answer: HttpAnswer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of answer.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function isOk(answer: HttpAnswer): boolean {
  return answer.status >= 200 && answer.status <= 299;
}
