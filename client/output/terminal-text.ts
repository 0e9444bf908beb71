/**
 * Text that came from outside (an inventory's names, tags and CSV header, AWS messages, a VM's error) made
 * safe to print: a control character written to a terminal is an instruction to it, not text. An ESC or a
 * C1 CSI starts a sequence that can move the cursor and overwrite earlier lines, clear the screen, set the
 * window title, write the clipboard (OSC 52) or hide a link's target (OSC 8); CR and backspace overwrite
 * what a line said; a newline forges a line of its own (a fake `✔`); bidirectional overrides make a name read
 * differently from what it is (CVE-2021-42574, "Trojan Source").
 *
 * Such characters are not dropped but shown as escapes (`\x1b`, `\n`, `\u202e`), the way `ls` and git
 * quote file names: `db\x1b[2J` must not read as `db`, another VM's name.
 */

/**
 * Every character a terminal may act on: C0 controls, DEL and C1 controls, the bidirectional embeddings,
 * overrides, isolates and marks, and the Unicode line and paragraph separators.
 */
// eslint-disable-next-line no-control-regex -- finding control characters is what this module is for
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeOne(c: string): string {
  const short = SHORT[c];
  if (short) return short;
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** One value (a name, a message): every control character, newline and tab included, shown as an escape. */
export function visible(text: string): string {
  return text.replace(UNSAFE, escapeOne);
}

/**
 * A colour sequence (SGR: `ESC [ digits ; ... m`), the only sequence the printer's own views emit inside
 * text. It styles what follows and can neither move the cursor nor talk to the terminal.
 */
// eslint-disable-next-line no-control-regex -- the one sequence kept
const SGR = /^\x1b\[[0-9;]*m/;

/**
 * Text the CLI composed (lines of a view): its newlines and tabs are layout and stay; with `colors`, so
 * do colour sequences; any other control character is shown as an escape. Values should have been made
 * `visible` before they were put into it (layout cannot tell a forged newline from a real one).
 */
export function layoutText(text: string, colors = false): string {
  let out = '';
  let last = 0;
  for (const m of text.matchAll(UNSAFE)) {
    const at = m.index;
    const c = m[0];
    if (c === '\n' || c === '\t') continue;
    const sgr = colors && c === '\x1b' ? SGR.exec(text.slice(at)) : null;
    if (sgr) continue;
    out += text.slice(last, at) + escapeOne(c);
    last = at + 1;
  }
  return last === 0 ? text : out + text.slice(last);
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * A copy of a result with every string in it (object keys too) made `visible`: what a text view renders.
 * Plain objects and arrays are copied; anything else (a Date, a class instance) is kept as it is.
 */
export function visibleValue<T>(value: T): T {
  if (typeof value === 'string') return visible(value) as T;
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v: unknown) => visibleValue(v)) as T;
  if (!isPlainObject(value)) return value;
  const copy: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) copy[visible(k)] = visibleValue(v);
  return copy as T;
}

/**
 * Characters JSON.stringify leaves raw although a terminal acts on them (DEL, C1, bidirectional controls,
 * line separators). In JSON they can only be inside strings, where `\uXXXX` is the same character.
 */
const RAW_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** JSON.stringify, with every character a terminal would act on escaped: the same JSON value, safe to print. */
export function jsonText(value: unknown, indent?: number): string {
  return String(JSON.stringify(value, null, indent)).replace(
    RAW_IN_JSON,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`
  );
}
