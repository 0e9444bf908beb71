/**
 * Test-only workflows, bundled together with the product's. They drive pieces of the product's workflow
 * code (e.g. conversion slots) without AWS.
 */
import {
  ApplicationFailure,
  condition,
  defineSignal,
  getExternalWorkflowHandle,
  proxyActivities,
  setHandler,
  sleep,
} from '@temporalio/workflow';
import { vmFinishedSignal, vmUploadedSignal } from '../../workflows/messages';
import type { MigrateVmInput } from '../../common/contracts/migration';

export interface TestActivities {
  shouldFail(vm: string): Promise<boolean>;
}
const testActivities = proxyActivities<TestActivities>({ startToCloseTimeout: '10 seconds' });
import { acquireConversionSlot, releaseConversionSlot } from '../../workflows/conversion-slot';

export * from '../../workflows';

export const letGoSignal = defineSignal('letGo');

/** Takes a conversion slot, holds it until told to let go, gives it back. */
export async function slotHolderWorkflow(quota: { workflowId: string; limit: number }): Promise<boolean> {
  let letGo = false;
  setHandler(letGoSignal, () => {
    letGo = true;
  });
  const granted = await acquireConversionSlot(quota, Date.now() + 120_000);
  if (granted) {
    await condition(() => letGo);
    await releaseConversionSlot(quota.workflowId);
  }
  return granted;
}

/**
 * Stand-in for the per-VM workflow when a test exercises only the fleet's scheduling: it takes
 * `tags.uploadMs` then `tags.convertMs`, reports to the fleet like the real one, and fails when the test's
 * `shouldFail` activity says so.
 * Exported under the real name so the fleet starts it; the product bundle never contains it.
 */
export async function migrateVmWorkflow(input: MigrateVmInput): Promise<{ vm: string }> {
  const { spec, fleetWorkflowId } = input;
  const fleetHandle = fleetWorkflowId ? getExternalWorkflowHandle(fleetWorkflowId) : undefined;
  await sleep(Number(spec.tags.uploadMs ?? 200));
  await fleetHandle?.signal(vmUploadedSignal, { vm: spec.name });
  await sleep(Number(spec.tags.convertMs ?? 200));
  // The test decides (an activity with memory in the test process), so a retried VM can succeed.
  if (await testActivities.shouldFail(spec.name)) {
    await fleetHandle?.signal(vmFinishedSignal, {
      vm: spec.name,
      phase: 'Failed',
      error: { type: 'Test', message: 'planned failure' },
    });
    throw ApplicationFailure.nonRetryable('planned failure', 'Test');
  }
  await fleetHandle?.signal(vmFinishedSignal, { vm: spec.name, phase: 'Completed' });
  return { vm: spec.name };
}
