/**
 * An HTTP request as the EC2 endpoint sees it: method, path, query, headers, the raw body (needed for
 * the signature) and the Query parameters, from a form-encoded POST body or a GET query string.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { QueryParams } from './query';

export interface Ec2Request {
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  headers: IncomingHttpHeaders;
  body: Buffer;
  params: QueryParams;
}

export function parseRequest(req: IncomingMessage, body: Buffer): Ec2Request {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const query: Record<string, string | string[]> = {};
  url.searchParams.forEach((value, key) => {
    const have = query[key];
    query[key] = have === undefined ? value : Array.isArray(have) ? [...have, value] : [have, value];
  });
  const method = req.method ?? 'GET';
  // A POST carries its parameters in the body; query-string parameters count too (body wins).
  const text = method === 'POST' && body.length > 0 ? `${url.search.slice(1)}&${body.toString('utf8')}` : url.search.slice(1);
  return { method, path: url.pathname, query, headers: req.headers, body, params: QueryParams.parse(text) };
}
