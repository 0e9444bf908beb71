/**
 * A transparent HTTP proxy (in front of the S3 server or the EC2 simulator) that counts the body bytes of PUT requests per key
 * pattern, so a test can measure what an upload sent (and sent again after a crash) at the wire, whatever
 * the uploader believes. SigV4 signs the Host header, so the proxy forwards it unchanged and clients must
 * sign for the proxy's address (they do: it is their endpoint).
 */
import http from 'node:http';

export interface CountingProxy {
  endpoint: string;
  /** Bytes of PUT bodies whose path matched, since start or the last reset. */
  putBytes(match?: RegExp): number;
  putCount(match?: RegExp): number;
  /** Arrival time (ms since the epoch) of every request of any method, since start or the last reset. */
  requestTimes(): number[];
  reset(): void;
  close(): Promise<void>;
}

export interface CountingProxyOptions {
  /** Hold each PUT whose path matches `slowPuts` this long before forwarding (slows an upload down). */
  putDelayMs?: number;
  slowPuts?: RegExp;
}

export async function startCountingProxy(target: string, opts: CountingProxyOptions = {}): Promise<CountingProxy> {
  const upstream = new URL(target);
  const puts: Array<{ path: string; bytes: number }> = [];
  const arrivals: number[] = [];
  const server = http.createServer((req, res) => {
    arrivals.push(Date.now());
    const path = decodeURIComponent(req.url ?? '');
    const slow = req.method === 'PUT' && !!opts.putDelayMs && (!opts.slowPuts || opts.slowPuts.test(path));
    let bytes = 0;
    let counted = false;
    const count = (): void => {
      // Once per request; a PUT cut off by a crash still counts what it sent.
      if (req.method === 'PUT' && !counted) puts.push({ path, bytes });
      counted = true;
    };
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      }
    );
    forward.on('error', () => res.destroy());
    const held: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (slow) held.push(chunk);
      else forward.write(chunk);
    });
    req.on('end', () => {
      count();
      if (slow) setTimeout(() => forward.end(Buffer.concat(held)), opts.putDelayMs);
      else forward.end();
    });
    req.on('close', () => {
      if (!req.complete) {
        count();
        forward.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const select = (match?: RegExp): Array<{ path: string; bytes: number }> => (match ? puts.filter((p) => match.test(p.path)) : puts);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    putBytes: (match) => select(match).reduce((sum, p) => sum + p.bytes, 0),
    putCount: (match) => select(match).length,
    requestTimes: () => [...arrivals],
    reset: () => {
      puts.length = 0;
      arrivals.length = 0;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
