/**
 * Test-only workflows, bundled together with the product's. They drive pieces of the product's workflow
 * code (e.g. conversion slots) without AWS.
 */
import { condition, defineSignal, setHandler } from '@temporalio/workflow';
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
