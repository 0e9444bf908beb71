/**
 * The bed the integration tests of one VM's migration share: the run's Temporal server, an S3 server and
 * an EC2 simulator of their own, a temporary folder holding `images` and `scratch`, and workers on fresh
 * task queues running vmconvoy's own activities and workflows. Started together; `stop()` shuts the
 * workers down and stops the rest. One home for what each such test file used to set up by hand.
 */
import { Worker } from '@temporalio/worker';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { ActivityDeps } from '../../activities';
import { createActivities } from '../../activities';
import type { AwsConfig } from '../../common/config';
import type { StartSimOptions, TestS3, TestSim, TestTemporal } from './testbed';
import { localAwsConfig, startS3, startSim, startTemporal, tempDir, uniqueTaskQueue, workflowBundle } from './testbed';

/** Conversions of a few seconds at most: fast enough for a test, still stepping through EC2's states. */
export const QUICK_CONVERSIONS = {
  conversionBytesPerSecond: 256 * 1024 * 1024,
  stepSeconds: 0.2,
  pendingPollMs: 200,
  minConversionSeconds: 0,
};

export interface MigrationBed {
  temporal: TestTemporal;
  s3: TestS3;
  sim: TestSim;
  /** The bed's temporary folder, and the `images` and `scratch` folders in it. */
  dir: string;
  images: string;
  scratch: string;
  /** The AWS configuration that reaches the bed's S3 server and simulator. */
  aws: AwsConfig;
  /**
   * Starts a worker on a fresh task queue (named after `role`) with vmconvoy's activities: images read
   * from `images`, conversions in `scratch`, unless `deps` says otherwise. Returns the queue.
   */
  worker(role: string, deps?: Partial<ActivityDeps>): Promise<string>;
  stop(): Promise<void>;
}

export async function startMigrationBed(name: string, opts: { sim?: StartSimOptions } = {}): Promise<MigrationBed> {
  const [temporal, s3, sim, dir] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim(opts.sim),
    tempDir(`vmconvoy-${name}-`),
  ]);
  const images = path.join(dir.dir, 'images');
  const scratch = path.join(dir.dir, 'scratch');
  await Promise.all([mkdir(images), mkdir(scratch)]);
  const aws = localAwsConfig(s3, sim);
  const workers: Worker[] = [];
  const runs: Promise<void>[] = [];
  return {
    temporal,
    s3,
    sim,
    dir: dir.dir,
    images,
    scratch,
    aws,
    async worker(role, deps = {}) {
      const taskQueue = uniqueTaskQueue(`${name}-${role}`);
      const worker = await Worker.create({
        connection: temporal.nativeConnection,
        namespace: temporal.namespace,
        taskQueue,
        workflowBundle: await workflowBundle(),
        activities: createActivities({ config: aws, imageRoots: [images], scratch: { dir: scratch }, ...deps }),
      });
      workers.push(worker);
      runs.push(worker.run());
      return taskQueue;
    },
    async stop() {
      for (const w of workers) w.shutdown();
      await Promise.all(runs);
      await Promise.all([sim.stop(), s3.stop()]);
      await dir.remove();
      await temporal.stop();
    },
  };
}
