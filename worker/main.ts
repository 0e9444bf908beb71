/**
 * The vmconvoy worker process (`vmconvoy worker`): polls the task queues and runs workflows and
 * activities. Configuration comes from the environment once, here (see README "Configuration").
 */
import { NativeConnection, Runtime } from '@temporalio/worker';
import { loadConfig } from '../common/config';
import { awsApiTaskQueueOf, controlTaskQueueOf } from '../common/task-queues';
import { createWorkers, runWorkers } from './create-worker';
import { createLogger, PinoTemporalLogger } from './logger';
import { dataConverterFromEnv } from '../common/temporal/payload-codec';
import { temporalConnectSettings } from '../common/temporal/connection';

export interface WorkerMainOptions {
  logFormat?: 'json' | 'pretty';
  uploadOnly?: boolean;
}

export async function runWorkerProcess(
  opts: WorkerMainOptions = {},
  env: NodeJS.ProcessEnv = process.env
): Promise<void> {
  const config = loadConfig(env);
  const logger = createLogger(config.logLevel, opts.logFormat ?? config.logFormat);
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
      uploadTaskQueue: config.temporal.uploadTaskQueue,
      awsApiTaskQueue: awsApiTaskQueueOf(config.temporal),
      controlTaskQueue: controlTaskQueueOf(config.temporal),
      uploadOnly: opts.uploadOnly,
      aws: config.aws,
      imageRoots: config.imageRoots,
      dataConverter: dataConverterFromEnv(env),
    });
    logger.info(
      {
        temporal: temporal.address,
        namespace: temporal.namespace,
        taskQueue: config.temporal.taskQueue,
        ec2: config.aws.ec2Endpoint ?? 'aws',
        s3: config.aws.s3Endpoint ?? 'aws',
        bucket: config.aws.bucket,
      },
      'vmconvoy worker started'
    );
    await runWorkers(workers);
  } finally {
    await connection.close();
  }
}

if (require.main === module) {
  runWorkerProcess().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
