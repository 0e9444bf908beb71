/**
 * What `status --watch` looks at each time: the batch as `status` sees it, the conversion limit in force in
 * the batch's account and region (its quota workflow's, which another batch may have changed), each VM's
 * image size (its status query; asked once per VM) and, for a VM uploading, the bytes sent so far (the
 * upload activity's last heartbeat: the VM's status only says so once the upload ends).
 */
import type { Client } from '@temporalio/client';
import { decodeArrayFromPayloads } from '@temporalio/common/lib/internal-non-workflow';
import type { BatchView } from '../batch-view';
import { batchView } from '../batch-view';
import { getConversionLimit } from '../conversion-limit';
import { mapLimited } from '../map-limited';
import type { FleetInput } from '../../common/contracts/fleet';
import { quotaWorkflowId, vmWorkflowId } from '../../common/workflow-ids';
import type { AwsAccount } from '../../common/aws/targets';
import { accountLabel } from '../../common/aws/targets';
import { vmStatusQuery } from '../../workflows/messages';

export interface LiveBatch {
  view: BatchView;
  /** Conversions at once in the batch's account and region now; null when its quota workflow did not answer. */
  conversionLimit: number | null;
  /** Image bytes per VM, once pre-flight has read them. */
  bytesTotal: ReadonlyMap<string, number>;
  /** Bytes sent per VM uploading now. */
  bytesSent: ReadonlyMap<string, number>;
}

const ENDED = new Set(['Completed', 'Failed', 'Cancelled']);

/** The distinct accounts+Regions a batch's VMs name (a batch that has ended has no fleet status to ask). */
export function accountsOfVms(vms: ReadonlyArray<{ aws?: AwsAccount }>): AwsAccount[] {
  const seen = new Map<string, AwsAccount>();
  for (const v of vms) if (v.aws && !seen.has(accountLabel(v.aws))) seen.set(accountLabel(v.aws), v.aws);
  return [...seen.values()];
}

/** The limit in force in each account+Region the batch uses (issue 20), from the fleet's status. */
export async function conversionLimitsOf(
  client: Client,
  accounts: readonly AwsAccount[] | undefined,
  fleetLimit: number
): Promise<Array<{ account: string; limit: number | null }>> {
  return mapLimited([...(accounts ?? [])], 8, async (a) => ({
    account: accountLabel(a),
    limit: await getConversionLimit(client, quotaWorkflowId(a.accountId, a.region), fleetLimit),
  }));
}

/**
 * The conversion limit in force for a batch: its first account's quota (a batch started before accounts:
 * the quota its memo names), else the fleet's own.
 */
export async function conversionLimitOf(
  client: Client,
  batch: string,
  fleetLimit?: number,
  accounts?: readonly AwsAccount[]
): Promise<number | null> {
  if (accounts?.length) {
    const first = accounts[0]!;
    return getConversionLimit(client, quotaWorkflowId(first.accountId, first.region), fleetLimit ?? 5);
  }
  const described = await client.workflow
    .getHandle(batch)
    .describe()
    .catch(() => undefined);
  const input = described?.memo?.fleetInput as FleetInput | undefined;
  if (!input?.quotaWorkflowId) return fleetLimit ?? null;
  return getConversionLimit(client, input.quotaWorkflowId, fleetLimit ?? input.limits.maxConversions);
}

/** Bytes sent so far by the VM's upload, from the activity's heartbeat; undefined when none is pending. */
async function uploadedSoFar(client: Client, workflowId: string): Promise<number | undefined> {
  const { raw } = await client.workflow.getHandle(workflowId).describe();
  const upload = raw.pendingActivities?.find((a) => a.activityType?.name === 'uploadImage');
  if (!upload?.heartbeatDetails?.payloads?.length) return undefined;
  const [details] = await decodeArrayFromPayloads(client.options.loadedDataConverter, upload.heartbeatDetails.payloads);
  const sent = (details as { bytesSent?: unknown } | undefined)?.bytesSent;
  return typeof sent === 'number' && Number.isSafeInteger(sent) && sent >= 0 ? sent : undefined;
}

/** Looks at the batch once; `sizes` carries the image sizes learnt by earlier looks. */
export async function lookAtBatch(client: Client, batch: string, sizes: Map<string, number>): Promise<LiveBatch> {
  const view = await batchView(client, batch);
  const conversionLimit = await conversionLimitOf(
    client,
    batch,
    view.fleet?.limits.maxConversions,
    view.fleet?.accounts
  );
  const bytesSent = new Map<string, number>();
  const running = view.vms.filter((v) => !ENDED.has(v.phase) && v.phase !== 'Pending' && v.phase !== 'Preflight');
  await mapLimited(running, 8, async (v) => {
    const id = vmWorkflowId(batch, v.name);
    try {
      if (!sizes.has(v.name)) {
        const total = (await client.workflow.getHandle(id).query(vmStatusQuery)).bytesTotal;
        if (total > 0) sizes.set(v.name, total);
      }
      if (v.phase === 'Uploading' && v.percent < 100) {
        const sent = await uploadedSoFar(client, id);
        if (sent !== undefined) bytesSent.set(v.name, sent);
      }
    } catch {
      // The VM moved on or its worker is away: the next look asks again.
    }
  });
  for (const v of view.vms) if (ENDED.has(v.phase) && v.bytesUploaded > 0) sizes.set(v.name, v.bytesUploaded);
  return { view, conversionLimit, bytesTotal: sizes, bytesSent };
}
