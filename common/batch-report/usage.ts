/**
 * What the batch used over time, from the VMs' phases: conversion slots held (a VM holds one from its
 * grant to the end of its conversion) and the uplink. The history records when each upload began and
 * ended, not its bytes per second, so each VM's bytes are spread evenly over its upload phase: the sum is
 * the uplink's average rate in each interval, not its peaks.
 */
import type { ReportVm } from './model';

/** A step function: `value` holds from `t` (epoch ms) until the next point's `t`. */
export interface StepPoint {
  t: number;
  value: number;
}

function steps(deltas: Array<{ t: number; d: number }>): StepPoint[] {
  const byTime = new Map<number, number>();
  for (const { t, d } of deltas) byTime.set(t, (byTime.get(t) ?? 0) + d);
  let value = 0;
  return [...byTime.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([t, d]) => {
      value += d;
      // Rounding noise of many added and removed rates is not a rate.
      return { t, value: Math.abs(value) < 1e-6 ? 0 : value };
    });
}

/** Conversion slots in use (VMs in their conversion phase). */
export function slotsInUse(vms: readonly ReportVm[]): StepPoint[] {
  const deltas: Array<{ t: number; d: number }> = [];
  for (const vm of vms) {
    for (const span of vm.spans) {
      if (span.phase !== 'conversion') continue;
      deltas.push({ t: span.start, d: 1 }, { t: span.end, d: -1 });
    }
  }
  return steps(deltas);
}

/** Uplink in bytes per second, each VM's bytes spread over its upload phase. */
export function uplinkInUse(vms: readonly ReportVm[]): StepPoint[] {
  const deltas: Array<{ t: number; d: number }> = [];
  for (const vm of vms) {
    const upload = vm.spans.find((s) => s.phase === 'upload');
    if (!upload || upload.end <= upload.start || vm.bytesUploaded <= 0) continue;
    const rate = vm.bytesUploaded / ((upload.end - upload.start) / 1000);
    deltas.push({ t: upload.start, d: rate }, { t: upload.end, d: -rate });
  }
  return steps(deltas);
}

export function peak(points: readonly StepPoint[]): number {
  return points.reduce((max, p) => Math.max(max, p.value), 0);
}
