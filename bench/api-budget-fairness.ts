/**
 * What the AWS API budget per account+Region does on a real Temporal dev server (not part of `npm run
 * bench`; tests do not assert on rates): a per-fairness-key rate limit of RATE/s on an activity queue, set
 * as `vmconvoy set-limits --max-api-rate` sets it (client/aws-api-budget.ts), then ACTIVITIES no-op
 * activities at once under two keys (two accounts), under one key, and unkeyed (VMs without an account), on
 * a server with matching.enableFairness (dev/services.ts) and, for comparison, on one without it.
 *
 *   node --import tsx bench/api-budget-fairness.ts
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { setAwsApiBudget } from '../client/aws-api-budget';
import { startTemporalServer, TEMPORAL_DYNAMIC_CONFIG_ARGS } from '../dev/services';

const RATE = 2;
const ACTIVITIES = 20;
const SCENARIOS: Array<{ name: string; keys: string[] }> = [
  { name: 'two accounts', keys: ['111111111111/us-east-1', '222222222222/us-east-1'] },
  { name: 'one account', keys: ['111111111111/us-east-1'] },
  { name: 'unkeyed', keys: [''] },
];

async function measure(fairness: boolean): Promise<string[]> {
  const server = await startTemporalServer(
    fairness ? {} : { extraArgs: ['--dynamic-config-value', 'matching.enableFairness=false'] }
  );
  const lines: string[] = [];
  const connection = await Connection.connect({ address: server.address });
  const native = await NativeConnection.connect({ address: server.address });
  try {
    const client = new Client({ connection });
    for (const [i, scenario] of SCENARIOS.entries()) {
      const apiQueue = `budget-probe-${i}-aws-api`;
      const wfQueue = `budget-probe-${i}`;
      await setAwsApiBudget(client, apiQueue, RATE, 'bench');
      const starts = new Map<string, number[]>();
      const activityWorker = await Worker.create({
        connection: native,
        taskQueue: apiQueue,
        maxConcurrentActivityTaskExecutions: 100,
        activities: {
          tick: (key: string): Promise<void> => {
            starts.set(key, [...(starts.get(key) ?? []), Date.now()]);
            return Promise.resolve();
          },
        },
      });
      const workflowWorker = await Worker.create({
        connection: native,
        taskQueue: wfQueue,
        workflowsPath: require.resolve('./api-budget-fairness-workflow'),
      });
      const t0 = Date.now();
      await Promise.all([
        activityWorker.run(),
        workflowWorker.run(),
        Promise.all(
          scenario.keys.map((key, k) =>
            client.workflow.execute('fanOut', {
              taskQueue: wfQueue,
              workflowId: `fan-${i}-${k}`,
              args: [apiQueue, key, ACTIVITIES],
            })
          )
        ).finally(() => {
          activityWorker.shutdown();
          workflowWorker.shutdown();
        }),
      ]);
      const wall = (Date.now() - t0) / 1000;
      const perKey = scenario.keys.map((key) => {
        const s = (starts.get(key) ?? []).sort((a, b) => a - b);
        const span = (s[s.length - 1]! - s[0]!) / 1000;
        return `${key || '(no key)'} ${span > 0 ? ((s.length - 1) / span).toFixed(2) : '∞'}/s`;
      });
      lines.push(
        `fairness ${fairness ? 'on ' : 'off'}, ${scenario.name}: ${scenario.keys.length * ACTIVITIES} activities in ${wall.toFixed(1)} s; ${perKey.join(', ')}`
      );
    }
  } finally {
    await native.close();
    await connection.close();
    await server.stop();
  }
  return lines;
}

async function main(): Promise<void> {
  console.log(
    `per-key budget ${RATE}/s, ${ACTIVITIES} activities per key (dev server args: ${TEMPORAL_DYNAMIC_CONFIG_ARGS.join(' ')})`
  );
  for (const line of [...(await measure(true)), ...(await measure(false))]) console.log(line);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
