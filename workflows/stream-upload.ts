/**
 * migrateVm's choice of how a RAW disk or fixed VHD is sent (issue 19): as a stream-optimized VMDK made
 * while it is uploaded (activities/upload-stream.ts), unless its row or the batch says `as-is`. The upload
 * then returns the length and format of the file it sent, which the manifest and ImportInstance describe.
 * Behind VM_STREAM_OPTIMIZED_UPLOAD_PATCH; only VMs that take the new path record the marker.
 */
import { patched } from '@temporalio/workflow';
import type { PreflightResult, UploadInput } from '../common/contracts/activity-io';
import type { MigrationSettings, VmSpec } from '../common/contracts/migration';
import { VM_STREAM_OPTIMIZED_UPLOAD_PATCH } from './versions';

export function streamOptimizedUpload(
  spec: VmSpec,
  settings: MigrationSettings,
  image: PreflightResult
): UploadInput['streamOptimized'] {
  const choice = spec.uploadFormat ?? settings.uploadFormat ?? 'stream-optimized';
  // A converted image or an OVA's disk is a stream-optimized VMDK already; a dynamic VHD is sparse already.
  const wholeDisk = image.conversion === undefined && image.imageOffset === undefined && !image.sourceFormat;
  const raw = image.format === 'RAW' || (image.format === 'VHD' && image.kind === 'fixed VHD');
  if (choice !== 'stream-optimized' || !wholeDisk || !raw || image.virtualBytes % 512 !== 0) return undefined;
  if (!patched(VM_STREAM_OPTIMIZED_UPLOAD_PATCH)) return undefined;
  return { virtualBytes: image.virtualBytes };
}
