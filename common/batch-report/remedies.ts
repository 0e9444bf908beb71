/**
 * The operator's next step for each failure type, one line each, for the report's failure table. The
 * failure's own message says what went wrong (AWS's words where AWS refused); this says where to act.
 * Every type of common/failures.ts has an entry (the compiler checks it).
 */
import type { FailureTypeName } from '../failures';

const FIXES: Record<FailureTypeName, string> = {
  ImageNotFound: 'Correct the image path in the inventory, or copy the image where the upload worker can read it.',
  ImageUnreadable: 'Give the upload worker read access to the image, or replace a damaged file.',
  ImageFormatUnsupported: 'Export the disk as VMDK (stream-optimized), VHD or RAW, or convert it with qemu-img.',
  ImageFormatMismatch: "Fix the inventory's format column to match the file, or leave it empty to detect it.",
  ImageOutsideRoots: 'Move the image under VMCONVOY_IMAGE_ROOTS, or add its folder to the roots of the worker.',
  InvalidVolumeSize: "Raise the inventory's volume size to at least the disk's virtual size, or leave it empty.",
  UserDataInvalid: 'Fix the user-data file: it must exist, be readable, and be at most 16 KiB.',
  ImageChanged: 'The image changed during the run: let whatever writes it finish, then retry the VM.',
  AwsInvalidParameter: 'Correct the inventory value AWS names in the message (instance type, architecture, platform).',
  AwsRequestFailed: "Act on AWS's message, then retry the VM.",
  AwsAuth: 'Give the worker credentials allowed to call VM Import, S3 and EC2 (see the README policy), then retry.',
  S3BucketMissing: 'Create the staging bucket in the same region, or correct VMCONVOY_BUCKET, then retry.',
  ConversionFailed:
    "AWS could not convert the disk: fix the guest as AWS's message says (kernel, drivers, partitions), export it again and retry.",
  ConversionInterrupted: 'AWS interrupted the conversion more often than allowed: retry the VM later.',
  ValidationFailed: 'Inspect the stopped instance named in the message, fix the inventory or guest, then retry.',
  DeadlineExceeded: 'Retry the VM, with fewer VMs at once or a longer deadline if the wait was for a slot.',
  InventoryInvalid: 'Start the batch again from the CSV so the inventory is stored anew.',
  ConversionQuotaExceeded: 'Lower --max-conversions to what the account allows, or ask AWS for a higher quota.',
  AwsThrottled:
    'Lower --max-api-rate (the budget of each AWS account and Region, for all its batches together) to leave room for the other tools of this account and Region, then retry.',
  AwsUnavailable: 'AWS was unreachable for too long: check the network path and AWS health, then retry.',
  AwsCredentialsExpired: "Refresh the worker's credentials (or let its role refresh them), then retry.",
  S3ChecksumMismatch: 'Parts kept arriving damaged: check the network path to S3, then retry.',
  LaunchRuleViolated: 'Change the row as the message says (instance type, architecture, IP), then retry the VM.',
  GuestRefused:
    'Fix the guest as the message says (kernel, partition table, free space) and export it again, or set inspection=skip for that row if the reader is wrong.',
  ScratchSpaceShort: "Free space in the site worker's scratch folder (or point it elsewhere), then retry the VM.",
  AwsTargetInvalid:
    "Define the row's aws_profile on every worker host, or give its region a staging bucket (VMCONVOY_REGION_BUCKETS), then retry the VM.",
  UnexpectedError: "Read the worker's log for this VM; report the error if it is a vmconvoy bug, then retry.",
};

export function fixFor(errorType: string | null): string {
  if (errorType === 'Cancelled') return 'Cancelled by an operator: retry the batch to run it again.';
  return (FIXES as Record<string, string>)[errorType ?? ''] ?? 'Act on the message, then run `vmconvoy retry <batch>`.';
}
