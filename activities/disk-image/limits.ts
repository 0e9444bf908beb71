/** What VM Import takes in size, and the types pre-flight reports. */
import type { DiskFormat } from '../../common/contracts/migration';
import type { OvfSummary } from '../../common/contracts/activity-io';
import type { FileIdentity } from '../open-within-roots';

export const GiB = 1024 ** 3;
/** EC2 CLI's floor for boot volumes. */
export const MIN_VOLUME_GIB = 8;
/**
 * The largest disk ImportInstance can boot: the boot volume must be MBR-partitioned, and MBR addresses
 * 2 TiB (VM Import user guide, "Limitations for resources imported by VM Import/Export": boot volumes
 * over 2 TiB need UEFI, which ImportInstance does not take). A header that declares more is either a disk EC2 cannot take or a damaged header;
 * either way nothing should be uploaded for it.
 */
export const MAX_IMPORT_BYTES = 2048 * GiB;

export interface ImageInfo {
  format: DiskFormat;
  kind: string;
  imageBytes: number;
  virtualBytes: number;
  /** Set for the containers the site worker converts to a stream-optimized VMDK before the upload. */
  conversion?: { qemuFormat: string };
  /** OVA: the boot disk's bytes inside the file (its start; `imageBytes` is its length). */
  imageOffset?: number;
  /** OVA: the whole file's length (the upload checks that the file is still that long). */
  containerBytes?: number;
  /** OVA: what its OVF descriptor says of the VM. */
  ovf?: OvfSummary;
}

export interface InspectOptions {
  imageRoots?: readonly string[];
  /**
   * The format the inventory declares. A file without any known header is taken for a RAW disk only when
   * neither this nor its name (`.vmdk`, `.vhd`) says otherwise.
   */
  declaredFormat?: DiskFormat;
  /**
   * qemu-img for the cross-check; false = skip it. @default 'qemu-img' (skipped when not installed). The
   * formats converted on the site worker use it whatever this says (their size and scratch need come from it).
   */
  qemuImg?: string | false;
  /** Refuse any other file than this one (the conversion re-reads pre-flight's file). */
  expect?: FileIdentity;
}
