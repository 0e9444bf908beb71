/** What a VM workflow tells its batch's fleet workflow: its upload place is free, and how it ended. */
import { getExternalWorkflowHandle } from '@temporalio/workflow';
import type { MigrateVmInput } from '../common/contracts/migration';
import type { VmFinished } from './messages';
import { vmFinishedSignal, vmUploadedSignal } from './messages';

/** Frees this VM's upload place in the fleet's window. */
export async function notifyFleetUploaded(input: MigrateVmInput): Promise<void> {
  if (!input.fleetWorkflowId) return;
  try {
    await getExternalWorkflowHandle(input.fleetWorkflowId).signal(vmUploadedSignal, { vm: input.spec.name });
  } catch {
    // Fleet gone: nothing to free.
  }
}

export async function notifyFleet(input: MigrateVmInput, finished: VmFinished): Promise<void> {
  if (!input.fleetWorkflowId) return;
  try {
    await getExternalWorkflowHandle(input.fleetWorkflowId).signal(vmFinishedSignal, finished);
  } catch {
    // The fleet may be gone (terminated by an operator); the VM's own result still stands.
  }
}
