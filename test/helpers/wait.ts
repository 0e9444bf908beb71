/** Polling for a condition in tests: the one place that decides how long to wait and what to say on timeout. */

export interface UntilOptions {
  /** @default 20000 */
  timeoutMs?: number;
  /** @default 100 */
  intervalMs?: number;
}

/** Calls `probe` until `ok` accepts its value; returns that value, or throws with the last one seen. */
export async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, opts: UntilOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // A probe that throws has not seen the condition yet (a workflow not created yet, a server restarting):
    // ask again until the deadline, then throw what it threw last.
    let v: T;
    try {
      v = await probe();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
      continue;
    }
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms; last value ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}
