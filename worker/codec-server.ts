/**
 * A codec server for the Temporal Web UI and CLI (`--ui-codec-endpoint`, `temporal --codec-endpoint`):
 * POST /decode and /encode take `{"payloads": [{metadata: {k: base64}, data: base64}]}` and answer the
 * same shape, so authorised operators read decoded payloads while the server stores only ciphertext.
 * Bind it to loopback or put it behind your SSO proxy: whoever reaches it can decrypt.
 */
import type { Payload, PayloadCodec } from '@temporalio/common';
import http from 'node:http';

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

function fromJson(p: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
    data: Buffer.from(p.data ?? '', 'base64'),
  };
}

function toJson(p: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])
    ),
    data: Buffer.from(p.data ?? []).toString('base64'),
  };
}

export interface CodecServerOptions {
  codec: PayloadCodec;
  host?: string;
  port?: number;
  /** Origins allowed to call from a browser (the Web UI's URL). */
  corsOrigins?: string[];
}

export async function startCodecServer(opts: CodecServerOptions): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const origin = req.headers.origin;
    if (origin && (opts.corsOrigins ?? []).includes(origin)) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-headers', 'content-type,x-namespace,authorization');
      res.setHeader('access-control-allow-methods', 'POST,OPTIONS');
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    const action = req.url?.split('?')[0];
    if (req.method !== 'POST' || (action !== '/decode' && action !== '/encode')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('POST /decode or /encode');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 8 * 1024 * 1024) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      void (async () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { payloads?: JsonPayload[] };
          const payloads = (body.payloads ?? []).map(fromJson);
          const out = action === '/decode' ? await opts.codec.decode(payloads) : await opts.codec.encode(payloads);
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ payloads: out.map(toJson) }));
        } catch (err) {
          res.writeHead(400, { 'content-type': 'text/plain' }).end(err instanceof Error ? err.message : 'bad request');
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
