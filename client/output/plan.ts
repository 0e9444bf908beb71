/**
 * `plan`: the forecast as people read it. A summary (the makespan and what bounds it), the assumptions it
 * rests on, one row per wave and one per VM, every time counted from the batch's start.
 */
import Table from 'cli-table3';
import type { PlanResult } from '../commands/plan';
import type { BoundBy } from '../forecast/bound';
import { formatBytes, formatDuration, formatRate } from '../forecast/rates';
import type { Paint } from './color';
import type { View } from './printer';
import { renderProblems } from './problems';

const BOUND_WORDS: Record<BoundBy, string> = {
  uplink: 'the uplink (more bandwidth would shorten it)',
  quota: 'the conversion quota (more conversions at once would shorten it)',
  'largest VM': 'one large VM (its own upload and conversion)',
};

const at = (seconds: number | null): string => (seconds === null ? '' : `+${formatDuration(seconds)}`);

export function renderPlan(result: PlanResult & { ok: true }, p: Paint): string {
  const { forecast: f, rates: r, limits: l } = result;
  const waves = f.waves.length;
  const lines = [
    `${p.bold(`plan for ${result.csv}`)}: ${f.vms.length} VMs in ${waves} wave${waves === 1 ? '' : 's'}, about ${p.bold(formatDuration(f.makespan))}`,
    `bounded by ${BOUND_WORDS[f.boundBy]}; no schedule beats ${formatDuration(f.boundSeconds)}`,
    p.dim(
      `limits: ${l.maxUploads} uploads, ${l.maxConversions} conversions, ${l.maxInFlight} in flight${l.canary ? `, canary ${l.canary}` : ''}`
    ),
    p.dim(
      `rates: uplink ${formatRate(r.uplinkBytesPerSecond)} (one upload at most ${formatRate(r.perUploadBytesPerSecond)}); conversion ${formatDuration(r.conversionSecondsPerGiB)} per GiB of ${result.sizes === 'virtual' ? 'virtual disk' : 'image'} + ${formatDuration(r.conversionOverheadSeconds)} per task; steps: pre-flight ${formatDuration(r.preflightSeconds)}, manifest ${formatDuration(r.manifestSeconds)}, import ${formatDuration(r.importSeconds)}, validation ${formatDuration(r.validateSeconds)}`
    ),
  ];
  if (result.calibratedFrom)
    lines.push(
      p.dim(`measured on batch ${result.calibratedFrom.batch}: ${result.calibratedFrom.basis.join(', ') || 'nothing'}`)
    );
  const style = { head: p.enabled ? ['cyan'] : [], border: p.enabled ? ['grey'] : [] };
  const waveTable = new Table({ head: ['wave', 'VMs', 'start', 'end', 'takes', 'bounded by'], style });
  for (const w of f.waves)
    waveTable.push([w.wave, w.vms, at(w.start), at(w.end), formatDuration(w.end - w.start), w.bound.boundBy]);
  const vmTable = new Table({
    head: ['VM', 'wave', 'image', 'start', 'uploaded', 'conversion', 'converted', 'end'],
    style,
  });
  for (const v of f.vms)
    vmTable.push([
      v.name,
      v.wave,
      formatBytes(v.uploadBytes),
      at(v.start),
      at(v.uploadEnd),
      at(v.conversionStart),
      at(v.conversionEnd),
      at(v.end),
    ]);
  return `${lines.join('\n')}\n${waveTable.toString()}\n${vmTable.toString()}`;
}

/** `plan`: the forecast, or the inventory's problems; --json prints the result itself (seconds from the start). */
export const PLAN_VIEW: View<PlanResult, { args: string[] }> = {
  text: (result, p, { args: [csv = ''] }) =>
    result.ok ? renderPlan(result, p) : renderProblems(csv, { ok: false, errors: result.errors }, p),
  toStderr: (result) => !result.ok,
};
