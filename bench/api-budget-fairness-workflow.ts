/** The workflow of bench/api-budget-fairness.ts: `n` no-op activities at once under one fairness key. */
import { proxyActivities } from '@temporalio/workflow';

export async function fanOut(taskQueue: string, fairnessKey: string, n: number): Promise<void> {
  const { tick } = proxyActivities<{ tick(key: string): Promise<void> }>({
    taskQueue,
    startToCloseTimeout: '1 minute',
    ...(fairnessKey ? { priority: { fairnessKey } } : {}),
  });
  await Promise.all(Array.from({ length: n }, () => tick(fairnessKey)));
}
