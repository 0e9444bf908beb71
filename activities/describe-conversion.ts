/**
 * One DescribeConversionTasks for the workflow's adaptive polling: the task's state, its progress and, when
 * it ended without completing, what its status message means (conversion-failures.ts).
 */
import type { ConversionTask, EC2Client } from '@aws-sdk/client-ec2';
import { DescribeConversionTasksCommand } from '@aws-sdk/client-ec2';
import type { ConversionProgress, ConversionState } from '../common/contracts/activity-io';
import { awsCall } from './aws-call';
import { isAwsError } from './aws-error-codes';
import { conversionFailure } from './conversion-failures';
import { redact } from '../common/redact';
import { listedTasks } from './import-idempotency';

import type { AwsTarget } from '../common/aws/targets';

export interface DescribeConversionInput {
  conversionTaskId: string;
  /** Image.Bytes, for the percentage from bytesConverted. */
  imageBytes: number;
  /** --- accounts (issue 20): the VM's profile and Region (names); absent = the worker's. */
  aws?: AwsTarget;
}

const STATES: readonly ConversionState[] = ['active', 'cancelling', 'cancelled', 'completed'];

/** `Progress: 42%` → 42. */
export function progressFromMessage(message: string | undefined): number | undefined {
  const match = /Progress:\s*(\d{1,3})\s*%/i.exec(message ?? '');
  return match ? Math.min(100, Number(match[1])) : undefined;
}

/** One conversion task as the workflow sees it. */
export function toConversionProgress(task: ConversionTask, imageBytes: number): ConversionProgress {
  const id = task.ConversionTaskId ?? '';
  const state: ConversionState = STATES.includes(task.State as ConversionState)
    ? (task.State as ConversionState)
    : 'active';
  // An ImportVolume task (a data disk) carries its volume and bytes in `importVolume`, without a status of its own.
  const volume =
    task.ImportInstance?.Volumes?.[0] ??
    (task.ImportVolume ? { ...task.ImportVolume, StatusMessage: undefined } : undefined);
  // Into the workflow (history, status query, failure message): EC2's text may quote the manifest's
  // presigned URLs, plain or percent-encoded.
  const statusMessage = redact(task.StatusMessage || volume?.StatusMessage || '');
  const byBytes =
    imageBytes > 0 && volume?.BytesConverted !== undefined ? Math.floor((volume.BytesConverted / imageBytes) * 100) : 0;
  const byMessage = Math.max(
    progressFromMessage(task.StatusMessage) ?? 0,
    progressFromMessage(volume?.StatusMessage) ?? 0
  );
  const percent = state === 'completed' ? 100 : Math.max(0, Math.min(99, Math.max(byBytes, byMessage)));
  return {
    conversionTaskId: id,
    state,
    statusMessage,
    percent,
    instanceId: task.ImportInstance?.InstanceId,
    volumeId: volume?.Volume?.Id,
    failure: state === 'cancelled' || state === 'cancelling' ? conversionFailure(id, statusMessage) : undefined,
  };
}

export async function describeConversion(
  deps: { ec2: EC2Client },
  input: DescribeConversionInput
): Promise<ConversionProgress> {
  const tasks = await awsCall(
    { operation: `DescribeConversionTasks ${input.conversionTaskId}`, service: 'EC2' },
    async (abortSignal): Promise<ConversionTask[]> => {
      const out = await deps.ec2.send(
        new DescribeConversionTasksCommand({ ConversionTaskIds: [input.conversionTaskId] }),
        { abortSignal }
      );
      return listedTasks(out.ConversionTasks);
    },
    // A task just created may not be listed yet (eventual consistency): "not yet" is not a failure.
    (err) => (isAwsError(err, 'InvalidConversionTaskId') ? { value: [] } : undefined)
  );
  const task = tasks.find((t) => t.ConversionTaskId === input.conversionTaskId);
  if (!task) {
    return {
      conversionTaskId: input.conversionTaskId,
      state: 'active',
      statusMessage: 'waiting for EC2 to list the conversion task',
      percent: 0,
    };
  }
  return toConversionProgress(task, input.imageBytes);
}
