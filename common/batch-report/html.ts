/**
 * The batch report as one self-contained HTML file: inline CSS and SVG, no script, no external URL, so it
 * opens from a mail attachment or a change-board folder with no network. Every string from outside (VM
 * names, AWS messages, the batch name) is escaped (escape.ts).
 */
import { escapeHtml as esc } from './escape';
import type { BatchReport, ReportVm } from './model';
import { REPORT_PHASES } from './phases';
import { PHASE_LABELS, formatElapsed, phaseAttribute, timeAxisOf, timelineSvg, usageSvg } from './svg';
import { slotsInUse, uplinkInUse } from './usage';

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#5b6475;margin-bottom:16px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #d8dde6;border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:20px}.card span{color:#5b6475;font-size:12px}
.card.failed b{color:#b42318}.card.completed b{color:#067647}
.forecast{margin-top:12px;color:#5b6475}
.legend{display:flex;gap:14px;margin:6px 0 4px;font-size:12px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;vertical-align:-2px}
.chart{max-width:100%;height:auto;display:block}
.chart text{font-size:11px;fill:#1d2330}.chart .vm-name,.chart .scale{text-anchor:end}
.chart .tick{text-anchor:middle;fill:#5b6475}.chart .grid{stroke:#eceff4}
.status-failed .vm-name{fill:#b42318;font-weight:600}
.phase-upload,.sw-upload{fill:#3b82f6;background:#3b82f6}
.phase-slot_wait,.sw-slot_wait{fill:#cbd5e1;background:#cbd5e1}
.phase-conversion,.sw-conversion{fill:#f59e0b;background:#f59e0b}
.phase-validation,.sw-validation{fill:#10b981;background:#10b981}
.phase-cleanup,.sw-cleanup{fill:#94a3b8;background:#94a3b8}
.usage .area{fill:#93c5fd;stroke:#2563eb;stroke-width:1}.usage-slots .area{fill:#fcd34d;stroke:#d97706}
.usage .limit{stroke:#b42318;stroke-dasharray:4 3}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e4e7ec;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f6f7f9}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.msg{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;white-space:pre-wrap;word-break:break-word}
.none{color:#5b6475}
@media print{body{margin:8mm}.chart{page-break-inside:avoid}}
`;

function formatBytes(n: number): string {
  if (n >= 1024 ** 4) return `${(n / 1024 ** 4).toFixed(2)} TiB`;
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

const rate = (bytesPerSecond: number): string => `${formatBytes(bytesPerSecond)}/s`;

function card(label: string, value: string, cls = ''): string {
  return `<div class="card ${cls}"><b>${esc(value)}</b><span>${esc(label)}</span></div>`;
}

function summary(report: BatchReport): string {
  const s = report.summary;
  const duration = s.durationSeconds === null ? '–' : formatElapsed(s.durationSeconds);
  const cards = [
    card('VMs', String(s.total)),
    card('completed', String(s.completed), 'completed'),
    card('failed', String(s.failed), 'failed'),
    card('cancelled', String(s.cancelled)),
    card('in progress', String(s.inProgress)),
    card('uploaded', formatBytes(s.bytesUploaded)),
    card('duration', duration),
  ];
  // forecast vs actual: only once a forecast is recorded for the batch (model.ts BatchForecast).
  const forecast = report.forecast
    ? `<p class="forecast" id="forecast" data-forecast-s="${report.forecast.makespanSeconds}">Forecast ${esc(
        formatElapsed(report.forecast.makespanSeconds)
      )}${report.forecast.boundBy ? ` (bound by ${esc(report.forecast.boundBy)})` : ''}, actual ${esc(duration)}${
        s.durationSeconds !== null
          ? ` (${Math.round((s.durationSeconds / report.forecast.makespanSeconds) * 100)}% of the forecast)`
          : ''
      }.</p>`
    : `<p class="forecast" id="forecast" data-forecast-s="">No forecast was recorded for this batch: actual figures only.</p>`;
  return `<div class="cards">${cards.join('')}</div>${forecast}`;
}

function legend(): string {
  return `<div class="legend">${REPORT_PHASES.map(
    (p) => `<span><i class="sw-${p}"></i>${esc(PHASE_LABELS[p])}</span>`
  ).join('')}</div>`;
}

function failuresTable(report: BatchReport): string {
  if (report.failures.length === 0) return `<p class="none" id="failures">No VM failed.</p>`;
  const rows = report.failures.map(
    (f) =>
      `<tr data-vm="${esc(f.name)}"><td>${esc(f.name)}</td><td>${esc(f.errorType)}</td>` +
      `<td class="msg">${esc(f.message)}</td><td>${esc(f.fix)}</td></tr>`
  );
  return (
    `<table id="failures"><thead><tr><th>VM</th><th>failure</th><th>message (AWS's words where AWS refused)</th>` +
    `<th>what to fix</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
  );
}

/** A VM with data volumes lists every volume under its instance (root first, then /dev/sdf, ...). */
function volumesCell(v: ReportVm): string {
  if (!v.dataVolumeIds?.length) return '';
  return `<br><small>volumes ${esc([v.volumeId ?? '?', ...v.dataVolumeIds].join(', '))}</small>`;
}

function vmTable(vms: readonly ReportVm[]): string {
  const head = REPORT_PHASES.map((p) => `<th>${esc(PHASE_LABELS[p])} (s)</th>`).join('');
  const rows = vms.map(
    (v) =>
      `<tr data-vm="${esc(v.name)}"><td>${esc(v.name)}</td><td>${esc(v.phase)}</td>` +
      `<td class="num">${esc(formatBytes(v.bytesUploaded))}</td>` +
      REPORT_PHASES.map(
        (p) => `<td class="num" ${phaseAttribute(p)}="${v.seconds[p] ?? ''}">${v.seconds[p] ?? ''}</td>`
      ).join('') +
      `<td>${esc(v.instanceId)}${volumesCell(v)}</td><td>${esc(v.conversionTaskId)}</td>` +
      `<td data-account="${esc(v.aws?.accountId ?? '')}">${esc(v.aws?.accountId ?? '')}</td>` +
      `<td data-region="${esc(v.aws?.region ?? '')}">${esc(v.aws?.region ?? '')}</td></tr>`
  );
  return (
    `<table id="vms"><thead><tr><th>VM</th><th>status</th><th>uploaded</th>${head}<th>instance</th>` +
    `<th>conversion task</th><th>AWS account</th><th>region</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
  );
}

export function renderBatchReportHtml(report: BatchReport): string {
  const axis = timeAxisOf(report.vms);
  const charts = axis
    ? [
        `<h2>Timeline</h2><p class="meta">One row per VM; time runs left to right from the batch's first step (elapsed time below).</p>`,
        legend(),
        timelineSvg(report.vms, axis),
        `<h2>Conversion slots in use</h2>`,
        usageSvg(
          {
            id: 'slots',
            title: 'conversion slots in use',
            points: slotsInUse(report.vms),
            format: (v) => String(Math.round(v)),
            limit: report.conversionLimit,
          },
          axis
        ),
        `<h2>Uplink in use</h2><p class="meta">Each VM's bytes spread evenly over its upload: averages, not peaks.</p>`,
        usageSvg({ id: 'uplink', title: 'uplink in use', points: uplinkInUse(report.vms), format: rate }, axis),
      ].join('\n')
    : `<p class="none">No VM has started yet: nothing to draw.</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>vmconvoy report: ${esc(report.batch)}</title>
<style>${CSS}</style></head>
<body data-batch="${esc(report.batch)}" data-state="${esc(report.state)}">
<h1>Batch ${esc(report.batch)}</h1>
<p class="meta">State: ${esc(report.state)} · generated ${esc(report.generatedAt)} · started ${esc(report.summary.startedAt ?? '–')} · ended ${esc(report.summary.endedAt ?? '–')}</p>
${summary(report)}
${charts}
<h2>Failures</h2>
${failuresTable(report)}
<h2>Every VM</h2>
${vmTable(report.vms)}
</body></html>
`;
}
