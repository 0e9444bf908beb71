/**
 * Signal, query and update definitions shared by the workflows and the CLI. Wire names are short and
 * stable: renaming one breaks running workflows.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { FleetLimits, FleetStatus, SetLimitsRequest } from '../common/contracts/fleet';
import type { Phase, VmError, VmStatus } from '../common/contracts/migration';

// ---------------------------------------------------------------------------------------------------
// Per-VM workflow
// ---------------------------------------------------------------------------------------------------

/** Current status of one VM: phase, progress, IDs, last error. */
export const vmStatusQuery = defineQuery<VmStatus>('status');

/** Sent by the conversion-quota workflow when this VM may call ImportInstance. */
export const slotGrantedSignal = defineSignal<[]>('slotGranted');

// ---------------------------------------------------------------------------------------------------
// Conversion quota (one per AWS account + region, shared by every batch)
// ---------------------------------------------------------------------------------------------------

export interface SlotRequest {
  /** Workflow ID of the VM asking; the grant is signalled there. */
  workflowId: string;
  /**
   * The run asking. Slots are held by runs: a new run of the same VM (`retry` starts one) is another holder,
   * and a run that ended without giving its slot back loses it. Absent from requests sent before runs were
   * tracked; such a request stands for whichever run of the ID asked.
   */
  runId?: string;
}
/** A run holding or waiting for a slot (no run ID: recorded before runs were tracked). */
export type SlotHolder = SlotRequest;

export const acquireSlotSignal = defineSignal<[SlotRequest]>('acquireSlot');
export const releaseSlotSignal = defineSignal<[SlotRequest]>('releaseSlot');
export const setQuotaLimitSignal = defineSignal<[number]>('setLimit');

export interface QuotaState {
  limit: number;
  /** Workflow IDs holding a slot, in grant order. */
  holders: string[];
  /** Workflow IDs waiting for one, in request order. */
  waiting: string[];
  /** The same, by run (set once the quota tracks runs). */
  holderRuns?: SlotHolder[];
  waitingRuns?: SlotHolder[];
  /** How often the holders' runs are checked for having ended without giving their slot back. */
  holderCheckSeconds?: number;
}
export const quotaStateQuery = defineQuery<QuotaState>('quotaState');

// ---------------------------------------------------------------------------------------------------
// Fleet
// ---------------------------------------------------------------------------------------------------

/** A VM child tells its fleet it ended; by workflow ID, so it reaches the fleet's latest run. */
export interface VmFinished {
  vm: string;
  phase: Extract<Phase, 'Completed' | 'Failed' | 'Cancelled'>;
  error?: VmError;
  instanceId?: string;
}
export const vmFinishedSignal = defineSignal<[VmFinished]>('vmFinished');

/** A VM child finished its upload: the fleet may start another upload. */
export const vmUploadedSignal = defineSignal<[{ vm: string }]>('vmUploaded');

export const fleetStatusQuery = defineQuery<FleetStatus>('fleetStatus');
export const pauseFleetSignal = defineSignal<[{ reason?: string }]>('pause');
export const resumeFleetSignal = defineSignal<[]>('resume');
/** Re-run only failed and cancelled VMs (an intact instance of an earlier run is adopted); returns how many were re-queued. */
export const retryFleetUpdate = defineUpdate<number, []>('retry');
/** Change limits while running; returns the limits now in force. Validated before it reaches history. */
export const setLimitsUpdate = defineUpdate<FleetLimits, [SetLimitsRequest]>('setLimits');

/** The conversion quota's start (and continue-as-new) input: its limit and who holds or waits for a slot. */
export interface ConversionQuotaInput {
  limit: number;
  /** Runs holding a slot; plain workflow IDs in inputs written before runs were tracked. */
  holders?: Array<string | SlotHolder>;
  waiting?: Array<string | SlotHolder>;
  /** How often holders' runs are checked for having ended without giving their slot back. */
  holderCheckSeconds?: number;
}
