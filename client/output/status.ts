/**
 * How a batch looks to people: a summary line, counts by phase, and a table of VMs (with progress bars on
 * a terminal); while watching without a terminal, one plain line per change.
 */
import Table from 'cli-table3';
import type { BatchView, StatusJson, VmView } from '../batch-view';
import { statusJson } from '../batch-view';
import { accountLabel } from '../../common/aws/targets';
import type { Paint } from './color';
import { paint } from './color';
import type { LiveView, View } from './printer';

/** A batch as `status` shows it: with the conversion limit in force in its account and region, when known. */
export type StatusView = BatchView & {
  conversionLimit?: number | null;
  /** --- accounts (issue 20): the limit in force in each account+Region of a batch that spans several. */
  conversionLimits?: Array<{ account: string; limit: number | null }>;
  /** The AWS API budget in force on the batch's AWS API queue (requests/s); undefined = none. */
  awsApiBudget?: number;
};

export interface StatusRenderOptions {
  color?: boolean;
  /** Progress bars instead of a percentage. @default false */
  bars?: boolean;
  /** Widest error message in the table. @default 80 */
  errorWidth?: number;
}

export function progressBar(percent: number, width = 20): string {
  const p = Math.max(0, Math.min(100, Math.round(percent)));
  const full = Math.round((p / 100) * width);
  return `${'█'.repeat(full)}${'░'.repeat(width - full)} ${String(p).padStart(3)}%`;
}

function phaseText(phase: VmView['phase'], p: Paint): string {
  if (phase === 'Completed') return p.green(phase);
  if (phase === 'Failed') return p.red(phase);
  if (phase === 'Cancelled') return p.yellow(phase);
  if (phase === 'Pending') return p.dim(phase);
  return p.cyan(phase);
}

/** The inspection verdict and the OS it found, e.g. `ok Ubuntu 22.04.4 LTS`, `skipped by operator`. */
function guestCell(v: VmView, p: Paint): string {
  const i = v.inspection;
  if (!i) return '';
  if (i.verdict === 'skipped') return p.dim('skipped by operator');
  const text = `${i.verdict}${i.os ? ` ${i.os}` : ''}`;
  return i.verdict === 'ok' ? text : i.verdict === 'warn' ? p.yellow(text) : p.red(text);
}

export function countsLine(counts: StatusJson['counts']): string {
  return (Object.keys(counts) as Array<keyof StatusJson['counts']>).map((k) => `${counts[k]} ${k}`).join(', ');
}

/** `N conversions`, or `N conversions in force (batch asked M)` when the account+region's limit differs. */
function conversionsText(asked: number, inForce: number | null | undefined): string {
  if (inForce === undefined || inForce === null || inForce === asked) return `${asked} conversions`;
  return `${inForce} conversions in force (batch asked ${asked})`;
}

export function renderStatus(view: StatusView, opts: StatusRenderOptions = {}): string {
  const p = paint(opts.color ?? false);
  const json = statusJson(view);
  const state =
    view.state === 'failed' ? p.red(view.state) : view.state === 'completed' ? p.green(view.state) : p.bold(view.state);
  const lines = [
    `batch ${p.bold(view.batch)}: ${state}${view.pauseReason ? ` (${view.pauseReason})` : ''}, ${view.total} VMs`,
    countsLine(json.counts),
  ];
  if (view.fleet) {
    const l = view.fleet.limits;
    lines.push(
      p.dim(
        `wave ${view.fleet.currentWave || '-'}; limits: ${l.maxUploads} uploads, ${conversionsText(l.maxConversions, view.conversionLimit)}${l.maxInFlight ? `, ${l.maxInFlight} in flight` : ''}`
      )
    );
  } else if (view.conversionLimit !== undefined && view.conversionLimit !== null && !view.conversionLimits)
    lines.push(p.dim(`conversions at once in its account and region now: ${view.conversionLimit}`));
  if (view.conversionLimits)
    lines.push(
      p.dim(`conversions at once: ${view.conversionLimits.map((c) => `${c.account} ${c.limit ?? '?'}`).join(', ')}`)
    );
  if (view.awsApiBudget !== undefined)
    lines.push(p.dim(`AWS API budget: ${view.awsApiBudget} requests/s per AWS account and Region`));
  if (view.vms.length === 0) return lines.join('\n');
  // --- accounts (issue 20): the AWS account and Region of each VM, once any VM has one.
  const accounts = view.vms.some((v) => v.aws);
  const table = new Table({
    head: [
      'VM',
      'phase',
      opts.bars ? 'progress' : '%',
      ...(accounts ? ['account/region'] : []),
      'instance',
      'guest',
      'error',
    ],
    style: { head: opts.color ? ['cyan'] : [], border: opts.color ? ['grey'] : [] },
  });
  const width = opts.errorWidth ?? 80;
  for (const v of view.vms) {
    const error = v.error ? (v.error.length > width ? `${v.error.slice(0, width - 1)}…` : v.error) : '';
    table.push([
      v.name,
      v.waiting ? `${phaseText(v.phase, p)}\n${p.yellow(v.waiting)}` : phaseText(v.phase, p),
      opts.bars ? progressBar(v.percent) : String(v.percent),
      ...(accounts ? [v.aws ? accountLabel(v.aws) : ''] : []),
      v.dataVolumeIds?.length
        ? `${v.instanceId ?? ''}\nvolumes ${[v.volumeId ?? '?', ...v.dataVolumeIds].join(', ')}`
        : (v.instanceId ?? ''),
      guestCell(v, p),
      p.red(error),
    ]);
  }
  return `${lines.join('\n')}\n${table.toString()}`;
}

/** Plain lines for what changed since `previous` (watching without a terminal, e.g. in CI logs). */
export function changeLines(previous: BatchView | undefined, view: BatchView, now = new Date()): string[] {
  const time = now.toISOString().slice(11, 19);
  const before = new Map(previous?.vms.map((v) => [v.name, v]) ?? []);
  const out: string[] = [];
  for (const v of view.vms) {
    const old = before.get(v.name);
    if (old && old.phase === v.phase && old.waiting === v.waiting) continue;
    const detail =
      v.phase === 'Completed'
        ? ` ${v.instanceId ?? ''}`
        : v.phase === 'Failed'
          ? ` ${v.errorType ?? ''}: ${v.error ?? ''}`
          : v.waiting
            ? ` (${v.waiting})`
            : '';
    out.push(`${time} ${v.name} ${v.phase}${detail}`.trimEnd());
  }
  const counts = countsLine(statusJson(view).counts);
  const oldCounts = previous ? countsLine(statusJson(previous).counts) : '';
  if (counts !== oldCounts || previous?.state !== view.state)
    out.push(`${time} batch ${view.batch} ${view.state}: ${counts}`);
  return out;
}

/** `status`: the table (with colours on a terminal); --json prints the `status --json` contract. */
export const BATCH_VIEW: View<StatusView> = {
  text: (view, p) => renderStatus(view, { color: p.enabled }),
  json: statusJson,
};

/** A batch followed until it ends (`status --watch`, `start --wait`). */
export const BATCH_LIVE: LiveView<BatchView> = {
  json: statusJson,
  frame: (view, color) => renderStatus(view, { color, bars: true }),
  changes: (previous, view) => changeLines(previous, view),
  summary: (final) => renderStatus(final),
};
