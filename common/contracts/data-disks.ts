/**
 * Data disks (issue 19): the activity inputs and results of ImportVolume and AttachVolume, and where a VM's
 * data disks come from and live. A data disk is imported like the boot disk (activity-io.ts) but with no guest.
 */
import type { ConversionPlan, ImageIdentity, ObjectLocation } from './activity-io';
import type { DiskFormat, ImportFormat, VmSpec } from './migration';

/**
 * Where data disk N's objects live: a folder inside the VM's (`<vm>/disk-N/`: its parts, manifest, import
 * marker and its own resource record), so the VM's cleanup deletes them with the rest.
 */
export function dataDiskLocation(loc: ObjectLocation, disk: number): ObjectLocation {
  return { ...loc, vm: `${loc.vm}/disk-${disk}` };
}

/**
 * The data disks of a VM in order: the inventory's list, or, for an OVA with more than one disk, the OVF's
 * disks after the first (the boot disk). An OVA's row names it alone (the inventory reader checks that).
 */
export function dataDiskRefs(
  spec: { image: string; dataDisks?: string[] },
  ovfDisks: number | undefined
): DataDiskRef[] {
  if (spec.dataDisks && spec.dataDisks.length > 0) return spec.dataDisks.map((image) => ({ image }));
  return Array.from({ length: Math.max(0, (ovfDisks ?? 1) - 1) }, (_, i) => ({ image: spec.image, ovaDisk: i + 1 }));
}

/** How a data disk is named to the operator: its file, or `file.ova#N` (the OVF's disk N, from 0). */
export function dataDiskSource(ref: DataDiskRef): string {
  return ref.ovaDisk === undefined ? ref.image : `${ref.image}#${ref.ovaDisk}`;
}

/** One data disk: a file, or disk `ovaDisk` (counted from 0 in OVF order) of an OVA. */
export interface DataDiskRef {
  image: string;
  ovaDisk?: number;
}

export interface DataDiskPreflightInput {
  ref: DataDiskRef;
  /** 1 = the first data disk: named in every message. */
  disk: number;
}

/**
 * What pre-flight found of a data disk: uploaded as it is, as its byte range inside an OVA, or (qcow2, VHDX,
 * sparse or flat VMDK) converted on the site worker first, as the boot disk is (`conversion` set).
 */
export interface DataDiskPreflight {
  ref: DataDiskRef;
  disk: number;
  /** What is uploaded: VMDK for a disk converted on the site. */
  format: ImportFormat;
  /** The container found when it is converted first (QCOW2, VHDX, VMDK for a sparse or flat one). */
  sourceFormat?: DiskFormat;
  /** Set when the site worker converts the disk to a stream-optimized VMDK before its upload. */
  conversion?: ConversionPlan;
  kind: string;
  imageBytes: number;
  virtualBytes: number;
  volumeSizeGib: number;
  imageIdentity?: ImageIdentity;
  imageOffset?: number;
  containerBytes?: number;
}

/**
 * Before a VM's first conversion on the site: can the scratch folder hold every conversion the VM will make
 * (its boot disk's and its data disks')? `parts` names each, for the message.
 */
export interface VmScratchCheckInput extends ObjectLocation {
  parts: Array<{ what: string; bytes: number }>;
}

export interface ImportVolumeInput extends ObjectLocation {
  /** The VM's own location: its resource record names the volume (ObjectLocation above is the disk's). */
  vmLocation: ObjectLocation;
  disk: number;
  /** The imported instance: the volume is made in its availability zone. */
  instanceId: string;
  format: ImportFormat;
  imageBytes: number;
  volumeSizeGib: number;
  manifestKey: string;
  validUntil: string;
  description: string;
  listingWaitSeconds?: number;
}

export interface ImportVolumeResult {
  conversionTaskId: string;
  volumeId?: string;
  availabilityZone: string;
  adopted: boolean;
}

export interface AttachDataVolumesInput extends ObjectLocation {
  spec: VmSpec;
  instanceId: string;
  /** In inventory order; data disk N goes to dataDiskDevice(N). */
  volumes: Array<{ disk: number; conversionTaskId: string; volumeId: string; volumeSizeGib: number }>;
}

export interface AttachDataVolumesResult {
  attached: Array<{ disk: number; volumeId: string; device: string; sizeGib: number }>;
  checks: string[];
}

export interface DataVolumeCleanupInput extends ObjectLocation {
  reason: string;
  /** How many data disks the VM has: their folders (`<vm>/disk-N/`) hold their markers and records. */
  disks: number;
}

export interface DataVolumeCleanupResult {
  cancelledTasks: string[];
  deletedVolumes: string[];
  /** Attached to an instance that remains (kept for inspection): they go with it on rollback. */
  keptVolumes: string[];
}
