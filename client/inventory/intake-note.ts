/** What `validate` says of a row whose image is converted on the site worker or is an OVA. */
import type { PreflightResult } from '../../common/contracts/activity-io';

export function mib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${Math.ceil(bytes / 2 ** 20)} MiB`;
}

export function intakeNote(found: Pick<PreflightResult, 'kind' | 'conversion' | 'ovf'>): string | undefined {
  if (found.conversion) {
    return `${found.kind}: converted to a stream-optimized VMDK on the site worker before the upload; needs up to ${mib(found.conversion.scratchBytes)} of scratch space there`;
  }
  const ovf = found.ovf;
  if (!ovf) return undefined;
  const hardware = [
    ovf.osType ? `OS ${ovf.osType}` : 'OS not stated',
    ovf.cpus !== undefined ? `${ovf.cpus} CPU${ovf.cpus === 1 ? '' : 's'}` : undefined,
    ovf.memoryMiB !== undefined ? `${mib(ovf.memoryMiB * 2 ** 20)} memory` : undefined,
  ].filter(Boolean);
  const suggestion = ovf.suggestedInstanceType
    ? `; VM Import takes ${ovf.suggestedInstanceType} for this ${ovf.platform} guest (the smallest that holds it)`
    : '';
  return `${found.kind}, uploaded from inside the OVA (no copy): ${hardware.join(', ')}${suggestion}`;
}
