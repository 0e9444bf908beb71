/**
 * The makespan lower bound of a batch (bench/README.md, "Lower bound (makespan)"): the one home of the
 * formula, used by `vmconvoy plan` and by the makespan benchmark.
 *
 * For VM j with upload time u_j (all uploads share one uplink) and conversion time c_j (k conversions at
 * once):
 *
 *   LB = max( Σu_j + min c_j ,  min u_j + Σc_j / k ,  max (u_j + c_j) )
 *
 * Every byte crosses the uplink and the VM whose upload ends last still converts; no conversion starts
 * before the first upload ends and k slots share Σc; no VM beats its own upload and conversion.
 */

/** Which resource a schedule cannot beat: the uplink, the conversion quota, or one large VM. */
export type BoundBy = 'uplink' | 'quota' | 'largest VM';

export interface Bound {
  seconds: number;
  /** Σu + min c */
  uploadBound: number;
  /** min u + Σc / k */
  conversionBound: number;
  /** max (u + c) */
  longestVm: number;
  boundBy: BoundBy;
}

export function makespanBound(
  uploadSeconds: readonly number[],
  conversionSeconds: readonly number[],
  slots: number
): Bound {
  if (uploadSeconds.length === 0)
    return { seconds: 0, uploadBound: 0, conversionBound: 0, longestVm: 0, boundBy: 'uplink' };
  const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
  const uploadBound = sum(uploadSeconds) + Math.min(...conversionSeconds);
  const conversionBound = Math.min(...uploadSeconds) + sum(conversionSeconds) / slots;
  const longestVm = Math.max(...uploadSeconds.map((u, j) => u + conversionSeconds[j]!));
  const seconds = Math.max(uploadBound, conversionBound, longestVm);
  // Ties go to the shared resource, where capacity would help; a VM alone is bounded by itself.
  const alone = uploadSeconds.length === 1;
  const boundBy: BoundBy =
    seconds === conversionBound && !alone ? 'quota' : seconds === uploadBound && !alone ? 'uplink' : 'largest VM';
  return { seconds, uploadBound, conversionBound, longestVm, boundBy };
}

/** The bound for images of `sizes` bytes, an uplink of B bytes/s and conversions of r bytes/s per task. */
export function lowerBound(
  sizes: readonly number[],
  uplinkBytesPerSecond: number,
  convertBytesPerSecond: number,
  slots: number
): Bound {
  return makespanBound(
    sizes.map((s) => s / uplinkBytesPerSecond),
    sizes.map((s) => s / convertBytesPerSecond),
    slots
  );
}
