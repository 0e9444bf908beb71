/**
 * Text into HTML (and inline SVG, which the HTML parser reads the same way). VM names come from an
 * inventory and messages from AWS: every one of them goes through here, in element text and in quoted
 * attribute values alike, so none can open a tag, end an attribute or start a script.
 */
const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}
