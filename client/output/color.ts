/** Colours only on a terminal, and never with NO_COLOR set (https://no-color.org). */
export interface Paint {
  /** Colours are on (for renderers that style more than words, such as table borders). */
  readonly enabled: boolean;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
}

export function useColor(stream: { isTTY?: boolean } = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(stream.isTTY) && !env.NO_COLOR && env.TERM !== 'dumb';
}

const sgr =
  (on: number, off: number) =>
  (s: string): string =>
    `\x1b[${on}m${s}\x1b[${off}m`;

const COLORED: Paint = {
  enabled: true,
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
  cyan: sgr(36, 39),
  dim: sgr(2, 22),
  bold: sgr(1, 22),
};
const id = (s: string): string => s;
const PLAIN: Paint = { enabled: false, red: id, green: id, yellow: id, cyan: id, dim: id, bold: id };

export function paint(color: boolean): Paint {
  return color ? COLORED : PLAIN;
}
