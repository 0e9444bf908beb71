/**
 * `vmconvoy status <batch> [--watch]`: the batch's state, counts by phase, the limits (the conversion limit
 * as its account+region's quota holds it now) and every VM. With --watch, a live view until the batch ends
 * (client/output/watch.ts).
 */
import type { Client } from '@temporalio/client';
import type { BatchView } from '../batch-view';
import { batchEnded, batchView } from '../batch-view';
import { ExitError } from '../errors';
import { BATCH_ARGUMENT, jsonOption, positiveInt } from '../options';
import { useColor } from '../output/color';
import type { StatusView } from '../output/status';
import { BATCH_VIEW } from '../output/status';
import { watchBatch } from '../output/watch';
import { accountsOfVms, conversionLimitOf, conversionLimitsOf, lookAtBatch } from '../output/watch-source';
import { getAwsApiBudget } from '../aws-api-budget';
import type { CommandSpec } from './command';
import { fleetHandle } from './fleet-handle';
import { awsApiQueueOfBatch } from './set-limits';

export async function statusCommand(client: Client, batch: string): Promise<BatchView> {
  const view = await batchView(client, batch);
  if (view.state === 'unknown' && view.vms.length === 0) {
    throw new ExitError(1, `no batch "${batch}": start it with \`vmconvoy start <inventory.csv> --batch ${batch}\``);
  }
  return view;
}

/** The AWS API budget (requests/s per account+Region) on the batch's AWS API queue; undefined = none. */
async function awsApiBudgetOfBatch(client: Client, batch: string): Promise<number | undefined> {
  const queue = awsApiQueueOfBatch(await fleetHandle(client, batch));
  return queue === undefined ? undefined : getAwsApiBudget(client, queue);
}

export interface WatchOptions {
  /** Between two looks at the batch. @default 1000 */
  intervalMs?: number;
  /** Called with every look, the last one with the batch ended. */
  onView(view: BatchView): void;
  signal?: AbortSignal;
}

/** Looks at the batch until it ends (or `signal` aborts); returns the last view. */
export async function watchCommand(client: Client, batch: string, opts: WatchOptions): Promise<BatchView> {
  for (;;) {
    const view = await statusCommand(client, batch);
    opts.onView(view);
    if (batchEnded(view) || opts.signal?.aborted) return view;
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 1000));
  }
}

/** Exit code for a batch: 2 when it ended with failed VMs. */
export function exitCodeFor(view: BatchView): 0 | 2 {
  return batchEnded(view) && view.vms.some((v) => v.phase === 'Failed') ? 2 : 0;
}

interface StatusFlags {
  json?: boolean;
  watch?: boolean;
  interval: number;
}

export const statusSpec: CommandSpec<StatusFlags, StatusView | undefined> = {
  name: 'status',
  summary: 'the batch: state, counts by phase, and every VM with its phase, progress, instance ID and error',
  arguments: [BATCH_ARGUMENT],
  options: [
    jsonOption('print {batch, state, counts, vms} (with --watch: one object per line, on change)'),
    {
      flags: '--watch',
      description: 'follow the batch until it ends: redraws with progress bars on a terminal, plain lines otherwise',
    },
    {
      flags: '--interval <seconds>',
      description: 'seconds between two looks with --watch',
      default: 1,
      parse: positiveInt('--interval'),
    },
  ],
  examples: ['vmconvoy status wave-a', 'vmconvoy status wave-a --json', 'vmconvoy status wave-a --watch'],
  // With --watch there is no one result: the batch is followed until it ends, and its end sets the exit code.
  run: async ({ args: [batch], opts }, ctx) => {
    const client = await ctx.client();
    if (!opts.watch) {
      const view = await statusCommand(client, batch!);
      const asked = view.fleet?.limits.maxConversions;
      // The fleet's accounts while it runs; afterwards the ones its VMs name.
      const accounts = view.fleet?.accounts ?? accountsOfVms(view.vms);
      return {
        ...view,
        conversionLimit: await conversionLimitOf(client, batch!, asked, accounts),
        // --- accounts (issue 20): each account+Region's limit, when the batch spans several.
        ...(accounts && accounts.length > 1
          ? { conversionLimits: await conversionLimitsOf(client, accounts, asked ?? 5) }
          : {}),
        // The AWS API budget per account+Region on the batch's AWS API queue, when one is set.
        awsApiBudget: await awsApiBudgetOfBatch(client, batch!).catch(() => undefined),
      };
    }
    await statusCommand(client, batch!); // an unknown batch is refused before watching starts
    const sizes = new Map<string, number>();
    const end = await watchBatch({
      intervalMs: opts.interval * 1000,
      look: () => lookAtBatch(client, batch!, sizes),
      printer: ctx.printer,
      json: opts.json === true,
      terminal: process.stdout.isTTY ? { stream: process.stdout, color: useColor(process.stdout, ctx.env) } : undefined,
    });
    if (end.interrupted) ctx.printer.note(`stopped watching; batch ${batch!} goes on (vmconvoy status ${batch!})`);
    else if (end.last && exitCodeFor(end.last) === 2) throw new ExitError(2, '');
    return undefined;
  },
  view: BATCH_VIEW,
  exit: (view, _call, followed) => {
    const last = followed ?? view;
    return last && exitCodeFor(last) === 2 ? new ExitError(2, '') : undefined;
  },
};
