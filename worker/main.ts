/**
 * The vmconvoy worker process (`vmconvoy worker`): polls the task queues and runs workflows and
 * activities. Configuration comes from the environment once, here (see README "Configuration").
 */
import { DEFAULT_SCRATCH_DIR } from '../activities/disk-image/scratch';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { loadConfig } from '../common/config';
import os from 'node:os';
import { VM_NAME_PATTERN, VM_NAME_RULE } from '../common/contracts/migration';
import { awsApiTaskQueueOf, controlTaskQueueOf, siteBaseQueueOf, siteTaskQueueOf } from '../common/task-queues';
import { createWorkers, runWorkers } from './create-worker';
import { createLogger, PinoTemporalLogger } from './logger';
import { dataConverterFromEnv } from '../common/temporal/payload-codec';
import { temporalConnectSettings } from '../common/temporal/connection';

export interface WorkerMainOptions {
  logFormat?: 'json' | 'pretty';
  uploadOnly?: boolean;
  /** `--allow-any-path`: run without image roots (as VMCONVOY_ALLOW_ANY_PATH=1 does). */
  allowAnyPath?: boolean;
  /**
   * `--site NAME` (or VMCONVOY_SITE): serve only that site's upload queue, with this host's image roots;
   * the workflows and the shared queues are served by workers started without a site.
   */
  site?: string;
}

/**
 * Why a worker without image roots does not start: an inventory names the files the worker reads (disk
 * images, user data), and whoever writes an inventory is not always who runs the worker. Without roots an
 * inventory could have any file the worker user can read uploaded to S3 or sent as an instance's user data.
 */
export const NO_IMAGE_ROOTS_MESSAGE =
  'vmconvoy worker: no image roots are set, so an inventory could make this worker read any file it can read ' +
  '(its disk images and user-data files are named by the inventory). Set VMCONVOY_IMAGE_ROOTS to the folders ' +
  'that hold the images and user-data files (colon-separated, e.g. VMCONVOY_IMAGE_ROOTS=/srv/images), or, if ' +
  'every inventory this worker will run is trusted, start it with --allow-any-path (or VMCONVOY_ALLOW_ANY_PATH=1).';

export class WorkerRefused extends Error {}

export async function runWorkerProcess(
  opts: WorkerMainOptions = {},
  env: NodeJS.ProcessEnv = process.env
): Promise<void> {
  const config = loadConfig(env);
  const site = opts.site ?? (env.VMCONVOY_SITE || undefined);
  if (site !== undefined && !VM_NAME_PATTERN.test(site))
    throw new WorkerRefused(`vmconvoy worker: site "${site}" (--site or VMCONVOY_SITE): ${VM_NAME_RULE}`);
  const uploadTaskQueue = site
    ? siteTaskQueueOf(siteBaseQueueOf(config.temporal), site)
    : config.temporal.uploadTaskQueue;
  const anyPath = config.imageRoots.length === 0;
  // Before anything is started or connected: a refusal costs nothing and says what to do.
  if (anyPath && !opts.allowAnyPath && !config.allowAnyPath) throw new WorkerRefused(NO_IMAGE_ROOTS_MESSAGE);
  const logger = createLogger(config.logLevel, opts.logFormat ?? config.logFormat);
  if (anyPath) {
    logger.warn('no image roots: an inventory may name any file this worker can read (allowed explicitly)');
  }
  Runtime.install({
    logger: new PinoTemporalLogger(logger),
    telemetryOptions: config.metricsBindAddress
      ? { metrics: { prometheus: { bindAddress: config.metricsBindAddress } } }
      : undefined,
  });
  const temporal = temporalConnectSettings(env);
  const connection = await NativeConnection.connect(temporal.connectionOptions);
  try {
    const workers = await createWorkers({
      connection,
      namespace: temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      uploadTaskQueue,
      awsApiTaskQueue: awsApiTaskQueueOf(config.temporal),
      controlTaskQueue: controlTaskQueueOf(config.temporal),
      // A site worker runs only its site's pre-flights and uploads.
      uploadOnly: opts.uploadOnly || site !== undefined,
      // The identity Temporal records on every task this worker takes: histories show which site ran it.
      identity: site ? `${process.pid}@${os.hostname()} site=${site}` : undefined,
      aws: config.aws,
      imageRoots: config.imageRoots,
      notifySecret: config.notifySecret,
      notifyReceivers: config.notifyReceivers,
      scratch: {
        dir: config.scratchDir ?? DEFAULT_SCRATCH_DIR,
        capBytes: config.scratchCapGib !== undefined ? config.scratchCapGib * 2 ** 30 : undefined,
      },
      dataConverter: dataConverterFromEnv(env),
    });
    logger.info(
      {
        temporal: temporal.address,
        namespace: temporal.namespace,
        taskQueue: config.temporal.taskQueue,
        ...(site ? { site, siteTaskQueue: uploadTaskQueue } : {}),
        ec2: config.aws.ec2Endpoint ?? 'aws',
        s3: config.aws.s3Endpoint ?? 'aws',
        bucket: config.aws.bucket,
        imageRoots: anyPath ? 'any path (allowed explicitly)' : config.imageRoots.join(':'),
      },
      'vmconvoy worker started'
    );
    await runWorkers(workers);
  } finally {
    await connection.close();
  }
}

if (require.main === module) {
  runWorkerProcess({ allowAnyPath: process.argv.includes('--allow-any-path') }).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
