/**
 * The overhead benchmark's baseline: the least a Temporal application can do for the same fleet. A parent
 * keeps `window` children running (as vmconvoy's fleet does); each child makes `activitiesPerVm` calls to
 * an activity that does nothing. No uploads, no AWS, no search attributes, no signals.
 */
import { condition, executeChild, proxyActivities } from '@temporalio/workflow';
import type { BaselineActivities } from './activities';

const { noop } = proxyActivities<BaselineActivities>({ startToCloseTimeout: '1 minute' });

export interface BaselineFleetInput {
  prefix: string;
  total: number;
  window: number;
  activitiesPerVm: number;
}

export async function baselineFleetWorkflow(input: BaselineFleetInput): Promise<number> {
  let running = 0;
  let done = 0;
  for (let i = 0; i < input.total; i++) {
    await condition(() => running < input.window);
    running += 1;
    void executeChild(baselineVmWorkflow, { workflowId: `${input.prefix}/${i}`, args: [input.activitiesPerVm] }).then(() => {
      running -= 1;
      done += 1;
    });
  }
  await condition(() => done === input.total);
  return done;
}

export async function baselineVmWorkflow(activities: number): Promise<void> {
  for (let i = 0; i < activities; i++) await noop();
}
