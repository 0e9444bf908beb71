/**
 * What a conversion task's asynchronous status message means: EC2's words for a failed import, matched to
 * what the operator should do, and whether AWS's own transient failure makes a fresh import worth trying.
 */
import type { VmError } from '../common/contracts/migration';
import { FailureType } from '../common/failures';
import { redact } from '../common/redact';

interface ConversionHint {
  match: RegExp;
  hint: string;
  /** AWS's own transient failure: running the VM again should succeed. */
  transient?: boolean;
}

const CONVERSION_HINTS: ConversionHint[] = [
  {
    match: /No bootable partition found/i,
    hint: 'ImportInstance boots only MBR-partitioned disks; this root disk is GPT (or has no active partition). Convert the partition table to MBR (e.g. `gdisk` recovery menu, or `sgdisk --gpttombr`) and export the image again.',
  },
  {
    match: /Footers not identical/i,
    hint: 'The VHD is a differencing disk or its footer copies differ (damaged or truncated). Merge/re-export it, or convert: `qemu-img convert -f vpc -O vpc -o subformat=fixed in.vhd out.vhd`.',
  },
  {
    match: /Unsupported VMDK File Format|unsupported compression algorithm|Uncompressed data has an invalid length/i,
    hint: 'The VMDK is not a valid stream-optimized VMDK. Convert it: `qemu-img convert -f vmdk -O vmdk -o subformat=streamOptimized in.vmdk out.vmdk`.',
  },
  {
    match: /Unsupported kernel version/i,
    hint: "The guest's kernel is not on the VM Import support list. Boot a supported distribution kernel by default, then export the image again.",
  },
  {
    match: /Linux is not supported on the requested instance/i,
    hint: 'Linux imports run only on some instance types (t2.micro/small/medium, m3.*, c3.*, r3.*, i2.*, …). Change instanceType in the inventory.',
  },
  {
    match: /AWS initiated task cancellation|SERVER_ERROR/i,
    hint: 'AWS cancelled the conversion on its side (a transient failure seen in about 1 % of imports). Run the VM again (`vmconvoy retry`).',
    transient: true,
  },
  {
    match: /expired/i,
    hint: 'The task expired before EC2 could read the whole image (upload not finished or presigned URLs expired). Run the VM again (`vmconvoy retry`).',
    transient: true,
  },
  {
    match: /Invalid S3 source location|403 Forbidden|do not have access/i,
    hint: 'EC2 could not read the manifest or a part: the presigned URLs expired or the objects were deleted. Run the VM again.',
    transient: true,
  },
  {
    match: /not local to the Region/i,
    hint: 'The staging bucket must be in the same Region as EC2. Set VMCONVOY_BUCKET to a bucket in that Region.',
  },
  {
    match: /Unknown OS|Missing OS files|No valid partitions|Not a valid volume/i,
    hint: 'EC2 found no supported operating system on the disk. Check that the image is the boot disk and that its OS is on the VM Import support list.',
  },
  {
    match: /FirstBootFailure|Booter Networking failure|instance not reachable/i,
    hint: 'Windows did not boot or reach the network after conversion. Enable DHCP on a single NIC, uninstall VMware Tools, disable antivirus and pending updates, then export again.',
  },
  {
    match: /fstab|volume group activation|Multiple directories|initramfs|GRUB|BLSC/i,
    hint: 'EC2 could not adapt the Linux boot configuration. Check /etc/fstab (use UUIDs, no network mounts), the initramfs and the GRUB default entry, then export again.',
  },
];

/** What the operator should do about a conversion task's failure message; undefined when unknown. */
export function conversionFailureHint(statusMessage: string): string | undefined {
  return CONVERSION_HINTS.find((h) => h.match.test(statusMessage))?.hint;
}

/** The VmError for a conversion task that ended `cancelled` (or is `cancelling`) with this message. */
export function conversionFailure(conversionTaskId: string, statusMessage: string): VmError {
  const entry = CONVERSION_HINTS.find((h) => h.match.test(statusMessage));
  const said = statusMessage.trim() ? `"${redact(statusMessage.trim())}"` : 'no status message';
  const what = `Conversion task ${conversionTaskId} was cancelled by EC2 (${said}).`;
  if (!entry)
    return {
      type: FailureType.ConversionFailed,
      message: `${what} Check the image against the VM Import prerequisites, then run the VM again.`,
    };
  return {
    type: entry.transient ? FailureType.ConversionInterrupted : FailureType.ConversionFailed,
    message: `${what} ${entry.hint}`,
  };
}
