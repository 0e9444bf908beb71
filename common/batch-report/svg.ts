/**
 * The report's charts as plain SVG, drawn here rather than in the browser: the file opens with no script,
 * no network and no library, prints as it shows, and the numbers a test reads are attributes of the
 * elements that draw them. Two charts share one time axis: the timeline (one row per VM, a bar per phase)
 * and what was in use (conversion slots, uplink).
 */
import { escapeHtml as esc } from './escape';
import type { ReportVm } from './model';
import type { ReportPhase } from './phases';
import { REPORT_PHASES } from './phases';
import type { StepPoint } from './usage';
import { peak } from './usage';

export const PHASE_LABELS: Record<ReportPhase, string> = {
  upload: 'upload',
  slot_wait: 'waiting for a slot',
  conversion: 'conversion',
  validation: 'validation',
  cleanup: 'cleanup',
};

/** The data attribute of a phase's seconds on a timeline row: data-upload-s, data-slot-wait-s… */
export const phaseAttribute = (phase: ReportPhase): string => `data-${phase.replace(/_/g, '-')}-s`;

const LABEL_W = 190;
const PLOT_W = 900;
const ROW_H = 18;
const AXIS_H = 28;
const CHART_H = 90;

/** The shared time axis: epoch ms → x. */
export interface TimeAxis {
  start: number;
  end: number;
}

export function timeAxisOf(vms: readonly ReportVm[]): TimeAxis | undefined {
  const times = vms.flatMap((v) => v.spans.flatMap((s) => [s.start, s.end]));
  if (times.length === 0) return undefined;
  const start = Math.min(...times);
  return { start, end: Math.max(start + 1000, ...times) };
}

function x(axis: TimeAxis, t: number): number {
  return LABEL_W + ((t - axis.start) / (axis.end - axis.start)) * PLOT_W;
}

const r1 = (n: number): string => (Math.round(n * 10) / 10).toString();

export function formatElapsed(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const TICK_STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400];

/** Grid lines and elapsed-time labels every "round" interval, at most about ten of them. */
function axisTicks(axis: TimeAxis, top: number, height: number, labels: boolean): string {
  const span = (axis.end - axis.start) / 1000;
  const step = TICK_STEPS_S.find((s) => span / s <= 10) ?? 86400 * Math.ceil(span / 86400 / 10);
  const out: string[] = [];
  for (let s = 0; s <= span; s += step) {
    const xs = r1(x(axis, axis.start + s * 1000));
    out.push(`<line class="grid" x1="${xs}" x2="${xs}" y1="${top}" y2="${top + height}"/>`);
    if (labels) out.push(`<text class="tick" x="${xs}" y="${top + height + 14}">${formatElapsed(s)}</text>`);
  }
  return out.join('');
}

/** One row per VM; a rect per phase; the row's data attributes carry each phase's seconds. */
export function timelineSvg(unordered: readonly ReportVm[], axis: TimeAxis): string {
  // In the order the VMs started, so waves read top to bottom; a VM with no phase last.
  const first = (vm: ReportVm): number => vm.spans[0]?.start ?? Infinity;
  const vms = [...unordered].sort((a, b) => first(a) - first(b) || a.name.localeCompare(b.name));
  const height = vms.length * ROW_H;
  const rows = vms.map((vm, i) => {
    const y = i * ROW_H;
    const attrs = REPORT_PHASES.map((p) => `${phaseAttribute(p)}="${vm.seconds[p] ?? ''}"`).join(' ');
    const bars = vm.spans.map((span) => {
      const x0 = x(axis, span.start);
      const w = Math.max(1, x(axis, span.end) - x0);
      const title = `${vm.name}: ${PHASE_LABELS[span.phase]} ${formatElapsed((span.end - span.start) / 1000)}`;
      return (
        `<rect class="phase phase-${span.phase}" data-phase="${span.phase}" x="${r1(x0)}" y="${y + 3}" ` +
        `width="${r1(w)}" height="${ROW_H - 6}"><title>${esc(title)}</title></rect>`
      );
    });
    return (
      `<g class="vm-row status-${esc(vm.phase.toLowerCase())}" data-vm="${esc(vm.name)}" data-status="${esc(vm.phase)}" ${attrs}>` +
      `<text class="vm-name" x="${LABEL_W - 8}" y="${y + ROW_H - 5}">${esc(vm.name)}</text>${bars.join('')}</g>`
    );
  });
  return (
    `<svg class="chart timeline" role="img" aria-label="timeline: one row per VM" viewBox="0 0 ${LABEL_W + PLOT_W + 20} ${height + AXIS_H}" ` +
    `width="${LABEL_W + PLOT_W + 20}" height="${height + AXIS_H}">` +
    `${axisTicks(axis, 0, height, true)}${rows.join('')}</svg>`
  );
}

/** A step line of `points` scaled to `max`, closed down to the baseline as an area. */
function stepArea(points: readonly StepPoint[], axis: TimeAxis, top: number, max: number): string {
  if (points.length === 0 || max <= 0) return '';
  const y = (v: number): string => r1(top + CHART_H - (v / max) * CHART_H);
  const base = r1(top + CHART_H);
  let d = `M${r1(x(axis, points[0]!.t))},${base}`;
  let prev = 0;
  for (const p of points) {
    const xs = r1(x(axis, p.t));
    d += ` L${xs},${y(prev)} L${xs},${y(p.value)}`;
    prev = p.value;
  }
  d += ` L${r1(x(axis, axis.end))},${y(prev)} L${r1(x(axis, axis.end))},${base} Z`;
  return `<path class="area" d="${d}"/>`;
}

export interface UsageChart {
  /** CSS class and heading. */
  id: string;
  title: string;
  points: StepPoint[];
  /** Formats a value for the scale and the peak. */
  format(value: number): string;
  /** A dashed line at this value (the conversion limit). */
  limit?: number | null;
}

export function usageSvg(chart: UsageChart, axis: TimeAxis): string {
  const top = 8;
  const observed = peak(chart.points);
  const max = Math.max(observed, chart.limit ?? 0, 1e-9);
  const limit =
    chart.limit != null
      ? `<line class="limit" x1="${LABEL_W}" x2="${LABEL_W + PLOT_W}" y1="${r1(top + CHART_H - (chart.limit / max) * CHART_H)}" ` +
        `y2="${r1(top + CHART_H - (chart.limit / max) * CHART_H)}"><title>limit ${esc(chart.format(chart.limit))}</title></line>`
      : '';
  return (
    `<svg class="chart usage usage-${chart.id}" data-peak="${r1(observed)}" role="img" aria-label="${esc(chart.title)}" ` +
    `viewBox="0 0 ${LABEL_W + PLOT_W + 20} ${CHART_H + top + AXIS_H}" width="${LABEL_W + PLOT_W + 20}" height="${CHART_H + top + AXIS_H}">` +
    `<text class="scale" x="${LABEL_W - 8}" y="${top + 10}">${esc(chart.format(max))}</text>` +
    `<text class="scale" x="${LABEL_W - 8}" y="${top + CHART_H}">0</text>` +
    `${axisTicks(axis, top, CHART_H, true)}${stepArea(chart.points, axis, top, max)}${limit}</svg>`
  );
}
