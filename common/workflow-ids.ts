/**
 * The IDs of vmconvoy's workflows, built and read in one place. IDs are durable (they name running
 * workflows and stored histories), so none of these formats may change.
 *
 *   <batch>                            the fleet workflow of a batch
 *   <batch>/<vm>                       one VM's workflow (VM names hold no `/`)
 *   vmconvoy-quota/<account>/<region>  the conversion quota of an AWS account and region (batches started
 *                                      before accounts: `<EC2 endpoint or aws>` in place of the account)
 *   vmconvoy-rollback:<batch>[:<vm>]   the rollback of a batch, or of one VM of it
 *
 * Sandbox-safe: workflows import it.
 */

/** The fleet workflow's ID is the batch name itself. */
export function fleetWorkflowId(batch: string): string {
  return batch;
}

export function vmWorkflowId(batch: string, vm: string): string {
  return `${batch}/${vm}`;
}

/** Batch and VM of a VM workflow ID; undefined for any other ID. Batch names may hold `/`, VM names not. */
export function parseVmWorkflowId(workflowId: string): { batch: string; vm: string } | undefined {
  const slash = workflowId.lastIndexOf('/');
  if (slash <= 0 || slash === workflowId.length - 1 || workflowId.startsWith(`${QUOTA_ID_PREFIX}/`)) return undefined;
  return { batch: workflowId.slice(0, slash), vm: workflowId.slice(slash + 1) };
}

const QUOTA_ID_PREFIX = 'vmconvoy-quota';

/**
 * `owner` says whose quota it is: the 12-digit AWS account ID (STS GetCallerIdentity), so two accounts in
 * one Region never share a limit and every batch of one account does, whatever endpoint or profile names
 * it. (Batches started before accounts passed the EC2 endpoint URL or `aws`; their IDs stay as they are.)
 */
export function quotaWorkflowId(owner: string, region: string): string {
  return `${QUOTA_ID_PREFIX}/${owner}/${region}`;
}

const ROLLBACK_ID_PREFIX = 'vmconvoy-rollback';

/**
 * The rollback of a batch (or of one VM of it): `vmconvoy-rollback:<batch>[:<vm>]`. One ID per target, so
 * a second `rollback --yes` while one runs attaches to it instead of starting another. `:` is in no batch
 * or VM name and the ID holds no `/`, so it never reads as a VM workflow's ID.
 */
export function rollbackWorkflowId(batch: string, vm?: string): string {
  return vm === undefined ? `${ROLLBACK_ID_PREFIX}:${batch}` : `${ROLLBACK_ID_PREFIX}:${batch}:${vm}`;
}
