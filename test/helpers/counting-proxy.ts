/**
 * A transparent HTTP proxy (in front of the S3 server or the EC2 simulator) that counts the body bytes of PUT requests per key
 * pattern, so a test can measure what an upload sent (and sent again after a crash) at the wire, whatever
 * the uploader believes. SigV4 signs the Host header, so the proxy forwards it unchanged and clients must
 * sign for the proxy's address (they do: it is their endpoint).
 */
import http from 'node:http';

/** One PUT seen by the proxy. */
export interface PutRecord {
  /** Decoded request path (`/bucket/key`). */
  path: string;
  /** Body bytes that went through (all of them, or what was sent before the connection broke). */
  bytes: number;
  /** When the request arrived (ms since the epoch). */
  at: number;
  /** The whole body arrived (false: cut off, e.g. by a crash). */
  complete: boolean;
}

export interface CountingProxy {
  endpoint: string;
  /** Every PUT since start or the last reset, in arrival order. */
  puts(): PutRecord[];
  /** PUTs whose body is still arriving right now. */
  putsInFlight(match?: RegExp): number;
  /** Bytes of PUT bodies whose path matched, since start or the last reset. */
  putBytes(match?: RegExp): number;
  putCount(match?: RegExp): number;
  /** Arrival time (ms since the epoch) of every request of any method, since start or the last reset. */
  requestTimes(): number[];
  reset(): void;
  /** Flips one byte in the body of each of the next `count` PUTs whose path matches (damage in transit). */
  corruptNextPuts(match: RegExp, count: number): void;
  close(): Promise<void>;
}

export interface CountingProxyOptions {
  /** Hold each PUT whose path matches `slowPuts` this long before forwarding (slows an upload down). */
  putDelayMs?: number;
  slowPuts?: RegExp;
  /**
   * Upload bandwidth: request bodies of every connection together pass at most this many bytes per
   * second (a site's uplink). Unset = as fast as loopback goes.
   */
  bytesPerSecond?: number;
}

/** One shared uplink: each chunk reserves its transfer time; the sender waits until its slot has passed. */
function uplink(bytesPerSecond: number | undefined): (bytes: number) => number {
  let freeAt = 0;
  return (bytes) => {
    if (!bytesPerSecond) return 0;
    const now = Date.now();
    freeAt = Math.max(freeAt, now) + (bytes / bytesPerSecond) * 1000;
    return Math.max(0, freeAt - now);
  };
}

export async function startCountingProxy(target: string, opts: CountingProxyOptions = {}): Promise<CountingProxy> {
  const upstream = new URL(target);
  const reserve = uplink(opts.bytesPerSecond);
  const puts: PutRecord[] = [];
  const inFlight = new Set<string>();
  let nextId = 0;
  const arrivals: number[] = [];
  let corrupt: { match: RegExp; left: number } | undefined;
  const upstreamAgent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const at = Date.now();
    const id = String(nextId++);
    arrivals.push(at);
    const path = decodeURIComponent(req.url ?? '');
    const slow = req.method === 'PUT' && !!opts.putDelayMs && (!opts.slowPuts || opts.slowPuts.test(path));
    let bytes = 0;
    let counted = false;
    // In flight from arrival until its answer is sent (or the connection breaks).
    if (req.method === 'PUT') {
      inFlight.add(`${id} ${path}`);
      res.on('close', () => inFlight.delete(`${id} ${path}`));
    }
    const count = (complete: boolean): void => {
      // Once per request; a PUT cut off by a crash still counts what it sent.
      if (req.method === 'PUT' && !counted) puts.push({ path, bytes, at, complete });
      counted = true;
    };
    const forward = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: upstreamAgent,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      }
    );
    forward.on('error', () => res.destroy());
    const held: Buffer[] = [];
    let damage = req.method === 'PUT' && corrupt !== undefined && corrupt.left > 0 && corrupt.match.test(path);
    if (damage && corrupt) corrupt.left -= 1;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (damage && chunk.length > 0) {
        chunk = Buffer.from(chunk);
        chunk[0] = chunk[0]! ^ 0xff;
        damage = false;
      }
      if (slow) held.push(chunk);
      else forward.write(chunk);
      const wait = reserve(chunk.length);
      if (wait > 1) {
        req.pause();
        setTimeout(() => req.resume(), wait);
      }
    });
    req.on('end', () => {
      count(true);
      if (slow) setTimeout(() => forward.end(Buffer.concat(held)), opts.putDelayMs);
      else forward.end();
    });
    req.on('close', () => {
      if (!req.complete) {
        count(false);
        forward.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const select = (match?: RegExp): PutRecord[] => (match ? puts.filter((p) => match.test(p.path)) : puts);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    puts: () => [...puts],
    putsInFlight: (match) =>
      [...inFlight].filter((entry) => !match || match.test(entry.slice(entry.indexOf(' ') + 1))).length,
    putBytes: (match) => select(match).reduce((sum, p) => sum + p.bytes, 0),
    putCount: (match) => select(match).length,
    requestTimes: () => [...arrivals],
    corruptNextPuts: (match, count) => {
      corrupt = { match, left: count };
    },
    reset: () => {
      puts.length = 0;
      inFlight.clear();
      arrivals.length = 0;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        // Its kept-alive sockets to the upstream too: they held a test file's process open for ever when the
        // upstream is the run's shared S3 server, which outlives the file (stream-upload hung the suite).
        upstreamAgent.destroy();
        server.close(() => resolve());
      }),
  };
}
