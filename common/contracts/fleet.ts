/**
 * The fleet (batch) contract shared by migrateFleetWorkflow and the CLI. The inventory itself never
 * travels as one payload: the CLI stores it, normalised, as JSON lines in the staging bucket, and the
 * fleet loads it a page at a time.
 */
import type { AwsAccount, MigrationSettings, VmSpec } from './migration';

export interface FleetLimits {
  /** VMs in pre-flight/upload at once (upload bandwidth). @default 4 */
  maxUploads: number;
  /**
   * Concurrent conversions in the AWS account+region (EC2 allows about 5). Shared by every batch that
   * targets the same account and region, through the conversion-quota workflow. @default 5
   */
  maxConversions: number;
  /** VMs started but not finished (uploaded and waiting for a slot count too). @default maxUploads + 2 × maxConversions */
  maxInFlight?: number;
}

export interface FleetInput {
  batch: string;
  /** S3 key of the normalised inventory (JSON lines, one VmSpec a line, sorted by wave then row). */
  inventoryKey: string;
  /** Rows in the inventory. */
  total: number;
  limits: FleetLimits;
  settings: MigrationSettings;
  /** The first K VMs must complete before any other starts. @default 0 */
  canary: number;
  /** Pause (do not abort) once more than this percentage of finished VMs failed. Unset = no budget. */
  failureBudgetPercent?: number;
  /**
   * Conversion-quota workflow ID of the CLI's endpoint and Region: used only by fleets started before
   * accounts (workflows/versions.ts FLEET_AWS_ACCOUNTS_PATCH); newer fleets name each VM's quota by the
   * account behind its row (`accounts`).
   */
  quotaWorkflowId: string;
  /** --- accounts (issue 20): the accounts resolved so far, by target (common/aws/targets.ts targetKey); carried across continue-as-new. */
  accounts?: Record<string, AwsAccount>;
  /** `start --max-conversions` was given: each account's quota gets `limits.maxConversions` when first resolved. */
  conversionLimitSet?: boolean;
  /**
   * Task queue of the VM workflows (the main queue) when the fleet runs on a queue of its own (the control
   * queue, which then also runs the quota workflow). Unset = the fleet's own queue, for all three.
   */
  vmTaskQueue?: string;
  /** Carried across continue-as-new; absent on the first run. */
  progress?: FleetProgress;
  /**
   * `start --notify [receiver]`: POST a signed event to this receiver (its URL is the workers' setting) on
   * each VM failure, wave end and the batch end (workflows/notify.ts).
   */
  notifyReceiver?: string;
  /**
   * Batches started before receivers were named carried the URL itself (and so its token, in history); such a
   * running batch keeps notifying it. New batches never set it.
   */
  notifyUrl?: string;
}

export interface FleetProgress {
  /** Index of the next inventory row to start. */
  nextRow: number;
  /** VMs started and not finished: name → wave and whether their upload is done. */
  running: Record<string, { wave: number; uploaded: boolean }>;
  completed: number;
  failed: number;
  cancelled: number;
  /** Rows whose VM failed, and whose VM was cancelled: re-queued by `retry`. */
  failedRows: number[];
  cancelledRows: number[];
  /** Rows re-queued by retry and not yet started again. */
  retryQueue: number[];
  paused: boolean;
  pauseReason?: string;
  /** Canary phase done (all canary VMs completed). */
  canaryPassed: boolean;
  /** Names of VMs found already completed by an earlier run (relaunch). */
  alreadyDone: number;
}

export type FleetState = 'running' | 'paused' | 'completed' | 'cancelled';

/** What `fleetStatus` returns. */
export interface FleetStatus {
  batch: string;
  state: FleetState;
  pauseReason?: string;
  total: number;
  started: number;
  running: string[];
  /** VMs in pre-flight/upload right now. */
  uploading: number;
  completed: number;
  failed: number;
  cancelled: number;
  currentWave: number;
  limits: FleetLimits;
  canary: number;
  canaryPassed: boolean;
  failureBudgetPercent?: number;
  /** --- accounts (issue 20): the AWS accounts and Regions of the batch's VMs so far (absent: fleets started before). */
  accounts?: AwsAccount[];
}

export interface SetLimitsRequest {
  maxUploads?: number;
  maxConversions?: number;
  maxInFlight?: number;
}

/** Rows per stored inventory page at most (pages are capped in bytes too: common/inventory-store.ts). */
export const INVENTORY_PAGE_SIZE = 100;

export interface InventoryPageInput {
  inventoryKey: string;
  /** Page number when pages had a fixed INVENTORY_PAGE_SIZE rows (inventories stored before the index). */
  page: number;
  /** The row wanted: the loader returns the page that holds it, wherever the index puts it. */
  row?: number;
}

export interface InventoryRow {
  /** 0-based position in the stored (wave-sorted) inventory. */
  row: number;
  /** 1-based line in the user's CSV, for messages. */
  line: number;
  spec: VmSpec;
}
