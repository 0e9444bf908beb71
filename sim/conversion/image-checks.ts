/**
 * What EC2 checks on the disk image's bytes before converting, with its real-world status messages.
 * Written independently of vmconvoy's own pre-flight: the simulator stands in for AWS, so agreeing by
 * construction would hide bugs on either side.
 */

/** Returns the failure status message, or undefined when EC2 would accept the image. */
export function checkImage(format: string, head: Buffer, tail: Buffer): string | undefined {
  if (format === 'VMDK') return checkVmdk(head);
  if (format === 'VHD') return checkVhd(head, tail);
  return undefined; // RAW: anything goes
}

const UNSUPPORTED_VMDK = 'ClientError: Disk validation failed [Unsupported VMDK File Format]';

/** Stream-optimized only: magic KDMV, flags bit 16 (compressed grains), compressAlgorithm 1 (deflate). */
function checkVmdk(head: Buffer): string | undefined {
  // Not a sparse-extent VMDK at all (qcow2, VHDX, a flat extent…) is as unsupported as an uncompressed one.
  if (head.length < 80 || head.toString('latin1', 0, 4) !== 'KDMV') return UNSUPPORTED_VMDK;
  const flags = head.readUInt32LE(8);
  const compressAlgorithm = head.readUInt16LE(77);
  const compressed = (flags & (1 << 16)) !== 0;
  if (!compressed || compressAlgorithm !== 1) return UNSUPPORTED_VMDK;
  return undefined;
}

function footerChecksumOk(footer: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) if (i < 64 || i >= 68) sum += footer[i]!;
  return ~sum >>> 0 === footer.readUInt32BE(64);
}

function checkVhd(head: Buffer, tail: Buffer): string | undefined {
  if (tail.length < 512 || tail.toString('latin1', 0, 8) !== 'conectix') {
    return 'ClientError: Disk validation failed [Invalid VHD footer]';
  }
  if (!footerChecksumOk(tail)) return 'ClientError: Disk validation failed [VHD footer checksum mismatch]';
  const diskType = tail.readUInt32BE(60);
  if (diskType === 4) return 'ClientError: Disk validation failed [Unsupported VHD differencing disk]';
  if (diskType !== 2 && diskType !== 3)
    return `ClientError: Disk validation failed [Unsupported VHD disk type ${diskType}]`;
  if (diskType === 3 && !head.subarray(0, 512).equals(tail)) return 'ClientError: Footers not identical';
  return undefined;
}

/** The simulator's deterministic failure marker: `VMCONVOY_SIM_FAIL=<message>\n` in the first MiB. */
export function failureMarker(firstMiB: Buffer): string | undefined {
  const text = firstMiB.toString('latin1');
  const at = text.indexOf('VMCONVOY_SIM_FAIL=');
  if (at < 0) return undefined;
  const end = text.indexOf('\n', at);
  if (end < 0) return undefined;
  return text.slice(at + 'VMCONVOY_SIM_FAIL='.length, end);
}
