/**
 * What `validate` and the pre-flight activity both check of one inventory row before a byte is uploaded:
 * ImportInstance's launch rules (common/vm-import-rules.ts) and the look inside the guest (inspect-guest.ts).
 * One home for both callers, so the CLI's verdict and the workflow's can never differ.
 */
import type { RuleRefusal } from '../../common/vm-import-rules';
import { checkLaunchRules } from '../../common/vm-import-rules';
import type { InspectionSummary, VmSpec } from '../../common/contracts/migration';
import { inspectGuest } from './inspect-guest';
import type { GuestFileFormat } from './open-disk';
import { mib } from './reasons';

/**
 * The launch rules a row breaks; `virtualBytes` once the image has been read (pre-flight). EC2's tag limits
 * are left to the spec's schema (common/contracts/migration.ts), which checks them on every row and every
 * stored page, counting Unicode characters as AWS does and vmconvoy's own tags with the row's.
 */
export function launchRefusals(
  spec: Pick<VmSpec, 'architecture' | 'instanceType' | 'platform' | 'privateIp' | 'volumeSizeGib'>,
  virtualBytes?: number
): RuleRefusal[] {
  return checkLaunchRules({
    architecture: spec.architecture,
    instanceType: spec.instanceType,
    platform: spec.platform,
    privateIp: spec.privateIp,
    volumeSizeGib: spec.volumeSizeGib,
    virtualBytes,
  });
}

/** One refusal as a sentence: what is wrong, what to change, the rule and its AWS page. */
export function launchRefusalText(r: RuleRefusal): string {
  return `${r.message} ${r.fix} (rule ${r.rule}: ${r.source})`;
}

/** The summary recorded for a row the operator marked `inspection=skip`. */
export const SKIPPED_INSPECTION: InspectionSummary = {
  verdict: 'skipped',
  reasons: [{ rule: 'inspection', severity: 'warn', message: 'skipped by operator (inspection=skip)', fix: '' }],
};

export interface InspectRowOptions {
  imageRoots?: readonly string[];
}

/**
 * The look inside the row's guest, as a summary fit for workflow histories (no file contents, no byte
 * counts). A reader failure is not a verdict on the guest: it becomes a `not-inspected` warning.
 */
const GUEST_CONTAINERS: readonly string[] = ['RAW', 'VHD', 'VMDK', 'OVA'] satisfies GuestFileFormat[];

/**
 * QCOW2 and VHDX are not read here (no small, well-kept reader for either exists on npm, and VHDX's log and
 * BAT are more than a reader should re-implement): the site worker converts them to a stream-optimized VMDK
 * and inspects that, right after the conversion and before any upload (../convert-image.ts). Until then the
 * verdict is this warning, which the converted disk's inspection replaces in the VM's status.
 */
export function afterConversion(format: string): InspectionSummary {
  return {
    verdict: 'warn',
    reasons: [
      {
        rule: 'inspect-after-conversion',
        severity: 'warn',
        message: `the guest inside a ${format} image is inspected on the site worker once it is converted to a stream-optimized VMDK, before any upload (a refusal then fails the VM with nothing uploaded).`,
        fix: `To have it judged now, convert it first (qemu-img convert -O vmdk -o subformat=streamOptimized) and point the row at the VMDK.`,
      },
    ],
  };
}

export async function inspectRow(
  spec: Pick<VmSpec, 'image' | 'format' | 'platform' | 'inspection'>,
  opts: InspectRowOptions = {}
): Promise<InspectionSummary> {
  if (spec.inspection === 'skip') return SKIPPED_INSPECTION;
  // The reader walks RAW, VHD, VMDK and an OVA's VMDK in place; QCOW2 and VHDX are judged once converted.
  if (spec.format !== undefined && !GUEST_CONTAINERS.includes(spec.format)) return afterConversion(spec.format);
  try {
    const found = await inspectGuest(spec.image, spec.format as GuestFileFormat | undefined, {
      imageRoots: opts.imageRoots,
      platform: spec.platform ?? 'Linux',
    });
    return {
      verdict: found.verdict,
      reasons: found.reasons.map(({ rule, severity, message, fix }) => ({ rule, severity, message, fix })),
      os: found.os,
      kernel: found.kernel,
      fileSystem: found.fileSystem,
      freeBytes: found.freeBytes,
    };
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return {
      verdict: 'warn',
      reasons: [
        {
          rule: 'not-inspected',
          severity: 'warn',
          message: `The guest could not be inspected (${why}).`,
          fix: "Check by hand that the guest meets VM Import's requirements, or set inspection=skip for this row.",
        },
      ],
    };
  }
}

/** The refusing reasons as one message: each with its rule and what to fix. */
export function guestRefusalText(summary: InspectionSummary): string {
  const refusals = summary.reasons.filter((r) => r.severity === 'refuse');
  const what = refusals.map((r) => `${r.message} Fix: ${r.fix} [rule ${r.rule}]`).join(' ');
  return `VM Import would refuse this guest${summary.os ? ` (${summary.os})` : ''}: ${what} Nothing is uploaded for it; set inspection=skip on the row only if you know better.`;
}

/** One line for humans: verdict, OS, kernel, file system, free space; then the warnings. */
export function inspectionLine(summary: InspectionSummary): string {
  if (summary.verdict === 'skipped') return 'inspection skipped by operator';
  const found = [
    summary.os,
    summary.kernel && `kernel ${summary.kernel}`,
    summary.fileSystem,
    summary.freeBytes !== undefined && `${mib(summary.freeBytes)} free`,
  ].filter(Boolean);
  const warnings = summary.reasons.filter((r) => r.severity === 'warn').map((r) => `${r.message} ${r.fix}`);
  return [`inspection ${summary.verdict}${found.length ? `: ${found.join(', ')}` : ''}`, ...warnings].join('; ');
}
