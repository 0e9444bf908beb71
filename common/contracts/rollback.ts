import type { AwsTarget } from '../aws/targets';

/**
 * The contract of a rollback (`vmconvoy rollback <batch>`): what the CLI shows, what the rollback workflow
 * and its activities take and return. Keys, names and AWS IDs only (it is in workflow histories).
 */

export interface RollbackInput {
  batch: string;
  /** Only this VM of the batch. */
  vm?: string;
  /** Temporal namespace the batch's VMs ran in: their records live under it (common/object-keys.ts). */
  namespace?: string;
  /** Also terminate instances started or changed after vmconvoy stopped them. */
  force: boolean;
  /**
   * --- accounts (issue 20): the account+Region looked at (its EC2, and the Region's staging bucket that holds
   * its VMs' records); absent = the worker's own.
   */
  aws?: AwsTarget;
}

/** The rollback workflow's input. */
export interface RollbackBatchInput extends RollbackInput {
  /** The AWS API task queue (its rate limit is the API budget); unset = the workflow's queue. */
  awsApiTaskQueue?: string;
  /**
   * --- accounts (issue 20): every account+Region the batch imported into (from its fleet); each is scanned
   * and rolled back in turn. Absent (CLIs before accounts, or a fleet no longer known): the worker's own only.
   */
  targets?: Array<AwsTarget | null>;
}

export interface RollbackVmInput extends RollbackInput {
  vm: string;
  /** False: only look and say what would be done (the CLI's preview); true: do it. */
  execute: boolean;
  /** The record of this VM sits in the layout without the namespace (VMs started before it was added). */
  legacyLayout?: boolean;
}

export type RollbackResourceKind = 'instance' | 'volume' | 'conversion-task';

/**
 * Why a resource is not acted on:
 * - gone: already terminated, deleted or cancelled (a second rollback finds everything so);
 * - changed: started or changed after vmconvoy stopped it (left alone unless --force);
 * - foreign: its vmconvoy tags name another VM or batch;
 * - unrecorded: tagged for this batch but in no record of what vmconvoy created: never touched;
 * - kept-with-instance: a volume of an instance that is left alone;
 * - attached-elsewhere: a volume attached to an instance the record does not name;
 * - with-task: the instance or volume of an open conversion task, removed by cancelling the task;
 * - timed-out: EC2 did not finish terminating the instance in time; a new rollback finishes it.
 */
export type RollbackSkip =
  | 'gone'
  | 'changed'
  | 'foreign'
  | 'unrecorded'
  | 'kept-with-instance'
  | 'attached-elsewhere'
  | 'with-task'
  | 'timed-out';

export interface RollbackItem {
  vm: string;
  kind: RollbackResourceKind;
  id: string;
  /** As EC2 showed it before the rollback acted (`not found` when EC2 does not know it). */
  state: string;
  /** What the rollback does (preview) or did (executed); absent = nothing. */
  action?: 'terminate' | 'delete' | 'cancel';
  skip?: RollbackSkip;
  /** One line for people: when it was stopped and started again, which VM its tags name... */
  detail?: string;
}

export interface RollbackVmResult {
  vm: string;
  items: RollbackItem[];
}

/** VMs of the batch with a record, and the instances tagged for the batch that no record names. */
export interface RollbackScan {
  vms: Array<{ vm: string; legacyLayout: boolean }>;
  unrecorded: RollbackItem[];
}

export interface RollbackResult {
  batch: string;
  vm?: string;
  force: boolean;
  /** True once done (`--yes`); false for the preview. */
  executed: boolean;
  /** The workflow that did it (executed only). */
  workflowId?: string;
  /** True when `--yes` found the same rollback running and waited for it instead of starting another. */
  attached?: boolean;
  items: RollbackItem[];
  /** How many resources were (or would be) terminated, deleted or cancelled: 0 = nothing to do. */
  actions: number;
}

/**
 * The items of a rollback over several account+Regions, then the unrecorded instances its scans listed: one
 * item per instance, and none for an instance another account+Region's record names (a scan that lists more
 * than its own Region's instances must not call a recorded one foreign).
 */
export function withUnrecorded(items: RollbackItem[], unrecorded: RollbackItem[]): RollbackItem[] {
  const seen = new Set(items.filter((i) => i.kind === 'instance').map((i) => i.id));
  const out = [...items];
  for (const u of unrecorded) {
    if (seen.has(u.id)) continue;
    seen.add(u.id);
    out.push(u);
  }
  return out;
}
