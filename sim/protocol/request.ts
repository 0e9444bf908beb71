/**
 * An HTTP request as the EC2 endpoint sees it: method, path, query, headers, the raw body (needed for
 * the signature) and the Query parameters, from a form-encoded POST body or a GET query string.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { QueryParams } from './query';

export interface Ec2Request {
  method: string;
  /** As received: still percent-encoded (the signature covers it). */
  path: string;
  /** The query string as received, without `?`. */
  rawQuery: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  params: QueryParams;
}

export function parseRequest(req: IncomingMessage, body: Buffer): Ec2Request {
  const target = req.url ?? '/';
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const rawQuery = q < 0 ? '' : target.slice(q + 1);
  const method = req.method ?? 'GET';
  // A POST carries its parameters in the body; query-string parameters count too (body wins).
  const text = method === 'POST' && body.length > 0 ? `${rawQuery}&${body.toString('utf8')}` : rawQuery;
  return {
    method,
    path,
    rawQuery,
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    body,
    params: QueryParams.parse(text),
  };
}
