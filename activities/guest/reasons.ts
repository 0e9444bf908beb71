/** What inspection concludes: each reason names its rule, how bad it is and what to fix. */

export type Severity = 'refuse' | 'warn';

export interface GuestReason {
  /** Stable rule name, e.g. `linux-kernel`, `free-space`, `mbr-required`. */
  rule: string;
  severity: Severity;
  message: string;
  fix: string;
}

export type Verdict = 'ok' | 'warn' | 'refuse';

export function verdictOf(reasons: readonly GuestReason[]): Verdict {
  if (reasons.some((r) => r.severity === 'refuse')) return 'refuse';
  return reasons.length > 0 ? 'warn' : 'ok';
}

export function mib(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${Math.round(bytes / 1024 ** 2)} MiB`;
}
