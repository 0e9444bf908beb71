/**
 * Injected faults, drawn from a seeded generator so a run can be repeated: each call of an EC2 action
 * rolls once and gets at most one fault.
 */
import type { SimConfig } from '../config';

export type Fault =
  | 'internalError'
  | 'unavailable'
  | 'throttle'
  | 'connectionReset'
  | 'slowResponse'
  | 'lostImportResponse'
  | 'malformedXml'
  | 'oversizedBody'
  | 'hang'
  | 'wrongContentType';

/** mulberry32: small, fast, good enough to spread faults (and the chaos suite's choices). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FaultInjector {
  private random: () => number;
  private seed: number;

  constructor(private readonly config: () => SimConfig) {
    this.seed = config().faults.seed;
    this.random = seededRandom(this.seed);
  }

  /** Back to the start of the seeded sequence. */
  reset(): void {
    this.seed = this.config().faults.seed;
    this.random = seededRandom(this.seed);
  }

  /** A number in [0, 1) from the seeded sequence (also used for AWS-initiated cancellations). */
  roll(): number {
    const seed = this.config().faults.seed;
    if (seed !== this.seed) {
      this.seed = seed;
      this.random = seededRandom(seed);
    }
    return this.random();
  }

  pick(action: string): Fault | undefined {
    const f = this.config().faults;
    if (f.actions.length > 0 && !f.actions.includes(action)) return undefined;
    const table: Array<[Fault, number]> = [
      ['internalError', f.internalErrorRate],
      ['unavailable', f.unavailableRate],
      ['throttle', f.throttleRate],
      ['connectionReset', f.connectionResetRate],
      ['slowResponse', f.slowResponseRate],
      ['lostImportResponse', action === 'ImportInstance' || action === 'ImportVolume' ? f.lostImportResponseRate : 0],
      ['malformedXml', f.malformedXmlRate],
      ['oversizedBody', f.oversizedBodyRate],
      ['hang', f.hangRate],
      ['wrongContentType', f.wrongContentTypeRate],
    ];
    if (table.every(([, rate]) => rate === 0)) return undefined;
    const r = this.roll();
    let acc = 0;
    for (const [fault, rate] of table) {
      acc += rate;
      if (r < acc) return fault;
    }
    return undefined;
  }
}
