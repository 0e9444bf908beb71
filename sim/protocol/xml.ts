/**
 * EC2 Query responses: `<{Action}Response xmlns="…/2016-11-15/">` with a requestId, lists as `<item>`
 * children, and the error envelope. The builder escapes `&` in presigned URLs.
 */
import { XMLBuilder } from 'fast-xml-parser';

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: false, format: false });
const XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

/** A list the way EC2 writes one. */
export function items<T>(values: T[]): { item: T[] } | '' {
  return values.length > 0 ? { item: values } : '';
}

/** Drops undefined members so they are omitted rather than written as empty elements. */
export function compact<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

export function renderResponse(action: string, requestId: string, body: Record<string, unknown>): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build({ [`${action}Response`]: { '@_xmlns': XMLNS, requestId, ...body } })}`;
}

export function renderError(code: string, message: string, requestId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build({
    Response: { Errors: { Error: { Code: code, Message: message } }, RequestID: requestId },
  })}`;
}

/** HTTP status EC2 uses for an error code. */
export function statusFor(code: string): number {
  if (code === 'AuthFailure') return 401;
  if (code === 'UnauthorizedOperation') return 403;
  if (code === 'DryRunOperation') return 412;
  if (code === 'RequestLimitExceeded' || code === 'Unavailable' || code === 'ServiceUnavailable') return 503;
  if (code === 'InternalError' || code === 'InsufficientCapacity') return 500;
  return 400;
}
