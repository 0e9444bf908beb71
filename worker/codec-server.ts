/**
 * A codec server for the Temporal Web UI and CLI (`--ui-codec-endpoint`, `temporal --codec-endpoint`):
 * POST /decode and /encode take `{"payloads": [{metadata: {k: base64}, data: base64}]}` and answer the
 * same shape, so authorised operators read decoded payloads while the server stores only ciphertext.
 *
 * Whoever it answers can decrypt, so every request must pass, in this order:
 * - the Host header names this server (a DNS-rebinding page reaches a loopback server under its own name);
 * - `Authorization: Bearer <token>` with a configured token (VMCONVOY_CODEC_TOKEN; `temporal --codec-auth`),
 *   or an access token the Web UI forwards (TEMPORAL_CODEC_PASS_ACCESS_TOKEN=true) that `verifyAccessToken`
 *   accepts;
 * - `X-Namespace` is the namespace it serves (the UI and the CLI send it).
 * CORS answers only the configured origins (the Web UI's own address). Bind it to loopback or put it behind
 * your SSO proxy.
 */
import type { Payload, PayloadCodec } from '@temporalio/common';
import { createHash, timingSafeEqual } from 'node:crypto';
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

/** The address `vmconvoy dev` and `temporal server start-dev` serve the Web UI on (dev/services.ts). */
export const DEV_UI_ORIGINS = ['http://127.0.0.1:8233', 'http://localhost:8233'];

const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** The one namespace whose payloads it serves (requests name theirs in X-Namespace). */
  namespace: string;
  /** Bearer tokens accepted (VMCONVOY_CODEC_TOKEN, comma-separated). */
  tokens?: string[];
  /**
   * Checks an access token the Web UI forwards (TEMPORAL_CODEC_PASS_ACCESS_TOKEN=true), e.g. against your
   * identity provider; true = the bearer may read this namespace.
   */
  verifyAccessToken?: (token: string, namespace: string) => Promise<boolean>;
  host?: string;
  port?: number;
  /** Origins allowed to call from a browser (the Web UI's URL). @default DEV_UI_ORIGINS */
  corsOrigins?: string[];
  /** Host header values accepted besides this server's own `host:port` (a proxy's name for it). */
  allowedHosts?: string[];
}

/** Constant-time comparison of two tokens (hashes, so lengths leak nothing either). */
function sameToken(a: string, b: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

function refuse(res: http.ServerResponse, status: number, why: string): void {
  res.writeHead(status, { 'content-type': 'text/plain' }).end(why);
}

function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        resolve(undefined);
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(undefined));
  });
}

export async function startCodecServer(opts: CodecServerOptions): Promise<{ url: string; close(): Promise<void> }> {
  const tokens = (opts.tokens ?? []).filter(Boolean);
  if (tokens.length === 0 && !opts.verifyAccessToken)
    throw new Error(
      'the codec server decrypts for whoever calls it: set VMCONVOY_CODEC_TOKEN (a bearer token callers send), or verify the access tokens the Web UI forwards'
    );
  const corsOrigins = opts.corsOrigins ?? DEV_UI_ORIGINS;
  const host = opts.host ?? '127.0.0.1';
  let allowedHosts = new Set<string>();

  async function authorised(header: string | undefined, namespace: string): Promise<boolean> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!match) return false;
    const token = match[1]!;
    if (tokens.some((t) => sameToken(t, token))) return true;
    return opts.verifyAccessToken ? opts.verifyAccessToken(token, namespace).catch(() => false) : false;
  }

  const server = http.createServer((req, res) => {
    if (!allowedHosts.has((req.headers.host ?? '').toLowerCase())) {
      refuse(res, 421, 'unknown Host');
      return;
    }
    const origin = req.headers.origin;
    if (origin && corsOrigins.includes(origin)) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-headers', 'content-type,x-namespace,authorization');
      res.setHeader('access-control-allow-methods', 'POST,OPTIONS');
      res.setHeader('vary', 'origin');
    }
    // A browser's preflight carries no credentials; the request that follows does.
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    const action = req.url?.split('?')[0];
    if (req.method !== 'POST' || (action !== '/decode' && action !== '/encode')) {
      refuse(res, 404, 'POST /decode or /encode');
      return;
    }
    void (async () => {
      const namespace = String(req.headers['x-namespace'] ?? '');
      if (!(await authorised(req.headers.authorization, namespace))) {
        refuse(res, 401, 'a bearer token is required');
        return;
      }
      if (namespace !== opts.namespace) {
        refuse(res, 403, `this codec server serves namespace "${opts.namespace}" only (X-Namespace)`);
        return;
      }
      const body = await readBody(req);
      if (!body) return;
      try {
        const parsed = JSON.parse(body.toString('utf8')) as { payloads?: JsonPayload[] };
        const payloads = (parsed.payloads ?? []).map(fromJson);
        const out = action === '/decode' ? await opts.codec.decode(payloads) : await opts.codec.encode(payloads);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ payloads: out.map(toJson) }));
      } catch (err) {
        refuse(res, 400, err instanceof Error ? err.message : 'bad request');
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, host, resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const names = [host, ...(host === '127.0.0.1' || host === '::1' ? ['localhost'] : [])];
  allowedHosts = new Set(
    [...names.map((n) => `${n.includes(':') ? `[${n}]` : n}:${port}`), ...(opts.allowedHosts ?? [])].map((h) =>
      h.toLowerCase()
    )
  );
  return {
    url: `http://${host}:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
