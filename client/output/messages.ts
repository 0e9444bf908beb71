/**
 * How the results of the commands that change a batch read as text: what happened, and what to run next.
 * With --json the printer prints the results themselves.
 */
import type { CancelResult } from '../commands/cancel';
import type { PauseResult } from '../commands/pause';
import type { ResumeResult } from '../commands/resume';
import type { RetryResult } from '../commands/retry';
import type { SetLimitsResult } from '../commands/set-limits';
import type { SetupResult } from '../commands/setup';
import type { StartOutput } from '../commands/start';
import type { View } from './printer';
import { renderProblems } from './problems';

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

interface StartCall {
  args: string[];
  opts: { maxConversions?: number; wait?: boolean };
}

/** A refused inventory goes to stderr as the list of problems; a started batch says where to see it. */
export const START_VIEW: View<StartOutput, StartCall> = {
  toStderr: (result) => !result.ok,
  text(result, p, { args: [csv = ''], opts }) {
    if (!result.ok) return renderProblems(csv, { ok: false, errors: result.errors }, p);
    const what = result.attached ? 'attached to running batch' : 'started batch';
    const dryRun = result.dryRun ? ', dry run' : '';
    const lines = [
      `${p.green('✔')} ${what} ${p.bold(result.batch)} (${result.vms} VMs in ${plural(result.waves, 'wave')}${dryRun})`,
      `Temporal UI: ${result.uiLink}`,
    ];
    const limit = result.conversionLimit ?? 'unknown (its quota workflow did not answer: is a worker running?)';
    const howToSet =
      opts.maxConversions === undefined ? ' (set it with --max-conversions or `vmconvoy set-limits`)' : '';
    lines.push(`Conversions at once in this account and region: ${limit}, shared by every batch there${howToSet}`);
    if (result.awsApiBudget !== null) {
      const change = `\`vmconvoy set-limits ${result.batch} --max-api-rate N\``;
      lines.push(
        `AWS API budget: ${result.awsApiBudget} requests/s per AWS account and Region (change it live with ${change})`
      );
    }
    for (const warning of result.warnings) lines.push(p.yellow(`warning: ${warning}`));
    if (!opts.wait) lines.push(p.dim(`follow it with: vmconvoy status ${result.batch} --watch`));
    return lines.join('\n');
  },
};

export const PAUSE_VIEW: View<PauseResult> = {
  text: ({ batch }) =>
    `batch ${batch} paused: no new VMs start, running ones go on; \`vmconvoy resume ${batch}\` continues`,
};

export const RESUME_VIEW: View<ResumeResult> = {
  text: ({ batch }) => `batch ${batch} resumed`,
};

export const CANCEL_VIEW: View<CancelResult> = {
  text: ({ batch, vm }) =>
    vm === undefined
      ? `batch ${batch}: cancellation requested; its running VMs are cancelled and cleaned up`
      : `VM ${vm} of batch ${batch}: cancellation requested; \`vmconvoy retry ${batch}\` runs it again`,
};

export const RETRY_VIEW: View<RetryResult> = {
  text: ({ batch, mode, requeued }) =>
    mode === 'requeued'
      ? `batch ${batch}: ${plural(requeued ?? 0, 'VM')} re-queued`
      : `batch ${batch} started again: failed and cancelled VMs run again, completed ones are kept`,
};

export const SET_LIMITS_VIEW: View<SetLimitsResult> = {
  text({ batch, limits, awsApiBudget }) {
    const inFlight = limits.maxInFlight ? `, ${limits.maxInFlight} VMs in flight` : '';
    const lines = [
      `batch ${batch} limits: ${limits.maxUploads} uploads, ${limits.maxConversions} conversions${inFlight}`,
    ];
    if (awsApiBudget) {
      const rate =
        awsApiBudget.requestsPerSecond === null
          ? 'none'
          : `${awsApiBudget.requestsPerSecond} requests/s per AWS account and Region, for every batch on it`;
      lines.push(`AWS API budget on task queue ${awsApiBudget.taskQueue}: ${rate}`);
    }
    return lines.join('\n');
  },
};

export const SETUP_VIEW: View<SetupResult> = {
  text({ namespace, added, retentionDays }) {
    const attributes = added.length > 0 ? `added ${added.join(', ')}` : 'already present';
    return `namespace ${namespace}: search attributes ${attributes}; retention ${retentionDays} days`;
  },
};
