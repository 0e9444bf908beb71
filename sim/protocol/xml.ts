/**
 * EC2 Query responses: `<{Action}Response xmlns="http://ec2.amazonaws.com/doc/{Version}/">` (the version the
 * request asked for: "the response returned by Amazon EC2 will honor the version included in the request")
 * with a requestId and lists as `<item>` children. The builder escapes `&` (presigned URLs) and `<`.
 */
import { XMLBuilder } from 'fast-xml-parser';

export const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  suppressEmptyNode: false,
  format: false,
});
export const xmlns = (version = '2016-11-15'): string => `http://ec2.amazonaws.com/doc/${version}/`;
export const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

/** A list the way EC2 writes one. */
export function items<T>(values: T[]): { item: T[] } | '' {
  return values.length > 0 ? { item: values } : '';
}

/** Drops undefined members so they are omitted rather than written as empty elements. */
export function compact<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

export function renderResponse(
  action: string,
  requestId: string,
  body: Record<string, unknown>,
  version?: string
): string {
  return XML_DECLARATION + builder.build({ [`${action}Response`]: { '@_xmlns': xmlns(version), requestId, ...body } });
}
