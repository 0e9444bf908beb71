/**
 * How `vmconvoy rollback` reads: one line per resource a record names (and per instance tagged for the
 * batch that none names), what EC2 shows now and what the rollback does or did to it, then a summary.
 */
import type { RollbackItem, RollbackResult, RollbackSkip } from '../../common/contracts/rollback';
import type { Paint } from './color';
import type { View } from './printer';

const SKIP_WORDS: Record<RollbackSkip, string> = {
  gone: 'already gone',
  changed: 'left alone',
  foreign: 'left alone: tagged for another VM',
  unrecorded: 'never touched: no record',
  'kept-with-instance': 'left alone with its instance',
  'attached-elsewhere': 'left alone',
  'with-task': 'removed with its conversion task',
  'timed-out': 'not finished',
};

function actionWords(item: RollbackItem, executed: boolean, p: Paint): string {
  if (item.action) {
    const did = { terminate: 'terminated', delete: 'deleted', cancel: 'cancelled' }[item.action];
    return executed ? p.green(did) : p.yellow(`will be ${did}`);
  }
  const words = item.skip ? SKIP_WORDS[item.skip] : 'nothing';
  return item.skip === 'gone' || item.skip === 'with-task' ? p.dim(words) : p.cyan(words);
}

function count(items: RollbackItem[], action: RollbackItem['action']): number {
  return items.filter((i) => i.action === action).length;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '));
}

export function renderRollback(result: RollbackResult, p: Paint): string {
  const target = result.vm ? `VM ${result.vm} of batch ${result.batch}` : `batch ${result.batch}`;
  const lines: string[] = [];
  if (result.items.length === 0) {
    lines.push(`${target}: no record of anything vmconvoy created, and no instance tagged for it`);
    return lines.join('\n');
  }
  lines.push(
    result.executed
      ? `${target} rolled back by workflow ${result.workflowId ?? '?'}${result.attached ? ' (already running: waited for it)' : ''}`
      : `${target}: what vmconvoy created (its records, checked against EC2 now)`
  );
  const rows = [['VM', 'RESOURCE', 'ID', 'STATE', 'ROLLBACK']];
  // The last column is written after padding: colours would upset the widths.
  for (const i of result.items) rows.push([i.vm, i.kind, i.id, i.state, '']);
  const rendered = table(rows);
  lines.push(`  ${p.bold(rendered[0]!)}`);
  result.items.forEach((item, n) => {
    const detail = item.detail ? ` (${item.detail})` : '';
    lines.push(`  ${rendered[n + 1]!}${actionWords(item, result.executed, p)}${detail}`);
  });
  const summary = [
    `${plural(count(result.items, 'terminate'), 'instance')} ${result.executed ? 'terminated' : 'to terminate'}`,
    `${plural(count(result.items, 'delete'), 'volume')} ${result.executed ? 'deleted' : 'to delete'}`,
    `${plural(count(result.items, 'cancel'), 'conversion task')} ${result.executed ? 'cancelled' : 'to cancel'}`,
  ].join(', ');
  const left = result.items.filter((i) => i.skip && i.skip !== 'gone' && i.skip !== 'with-task').length;
  const leftNote = left > 0 ? `; ${plural(left, 'resource')} left alone (see above)` : '';
  if (result.actions === 0) lines.push(`nothing to do: nothing was changed${leftNote}`);
  else lines.push(`${summary}${leftNote}`);
  if (!result.executed && result.actions > 0) lines.push('run again with --yes to do it');
  if (result.items.some((i) => i.skip === 'changed') && !result.force)
    lines.push('instances started or changed after vmconvoy stopped them are left alone; --force includes them');
  return lines.join('\n');
}

export const ROLLBACK_VIEW: View<RollbackResult> = {
  text: (result, p) => renderRollback(result, p),
};
