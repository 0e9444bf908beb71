/**
 * The online checks for a whole inventory, from the CLI (`validate --online`, `start` unless `--offline`),
 * with the credentials and endpoints the worker's configuration names (AWS_REGION, AWS_ENDPOINT_URL_EC2,
 * AWS_ACCESS_KEY_ID…: the CLI reads the same variables). The checks are the worker's own
 * (activities/network-checks.ts, activities/online-checks.ts), run here directly rather than through
 * Temporal: `validate` must work before any worker runs, and a short read-only batch of calls needs no
 * durable workflow.
 *
 * Calls per inventory: one DescribeAvailabilityZones, one DescribeSubnets and one or two
 * DescribeSecurityGroups (values deduplicated, 200 per call), and one ImportInstance DryRun per distinct
 * launch (platform, architecture, instance type, zone, subnet, groups): a refusal names the first row of
 * the launch and the other rows it applies to.
 */
import { createAwsClients, destroyAwsClients } from '../../common/aws/clients';
import { targetOfSpec } from '../../common/aws/targets';
import type { VmconvoyConfig } from '../../common/config';
import type { InventoryRow } from '../../common/contracts/fleet';
import { preflight } from '../../activities/disk-image/preflight';
import { checkNetwork } from '../../activities/network-checks';
import type { OnlineProblem } from '../../activities/network-checks';
import { dryRunRequest, importDryRun } from '../../activities/online-checks';
import { mapLimited } from '../map-limited';

export interface OnlineCheckOptions {
  /** The batch whose manifest location the DryRun's URL names. @default 'validate' */
  batch?: string;
  /** How to tell the operator to skip these checks (`--offline`, or leaving out `--online`). */
  skipHint: string;
}

/** One DryRun per distinct launch: rows that would send the same launch specification share its answer. */
function launchKey({ spec }: InventoryRow): string {
  const { platform, architecture, instanceType, availabilityZone, subnetId, securityGroups } = spec;
  return JSON.stringify([platform, architecture, instanceType, availabilityZone, subnetId, [...securityGroups].sort()]);
}

async function dryRuns(
  config: VmconvoyConfig,
  clients: ReturnType<typeof createAwsClients>,
  rows: InventoryRow[],
  batch: string
): Promise<OnlineProblem[]> {
  const launches = new Map<string, InventoryRow[]>();
  for (const row of rows) launches.set(launchKey(row), [...(launches.get(launchKey(row)) ?? []), row]);
  const answers = await mapLimited([...launches.values()], 4, async (group) => {
    const first = group[0]!;
    const image = await preflight(first.spec, { imageRoots: config.imageRoots, qemuImg: false });
    // User data is left out: its file is read where the VM runs (the worker), and its size is an offline rule.
    const request = await dryRunRequest(
      { presigner: clients.presigner, bucket: config.aws.bucket, keyPrefix: config.aws.keyPrefix },
      {
        batch,
        vm: first.spec.name,
        spec: { ...first.spec, userDataFile: undefined },
        format: image.format,
        imageBytes: image.imageBytes,
        volumeSizeGib: image.volumeSizeGib,
      }
    );
    const refused = await importDryRun(clients.ec2, config.aws.region, request, first.line);
    if (!refused || group.length === 1) return refused;
    const others = group.slice(1).map((r) => r.line);
    return { ...refused, message: `${refused.message} (the same for lines ${others.join(', ')})` };
  });
  return answers.filter((a): a is OnlineProblem => a !== undefined);
}

/** Every online problem of the inventory's rows, sorted by line; [] when AWS agrees with every row. */
export async function onlineInventoryProblems(
  rows: InventoryRow[],
  config: VmconvoyConfig,
  opts: OnlineCheckOptions
): Promise<OnlineProblem[]> {
  // --- accounts (issue 20): these checks ask the CLI's own account and Region; a row naming another
  // profile or Region is checked by its VM's own online checks (a dry run), with that target's clients.
  rows = rows.filter((r) => !targetOfSpec(r.spec));
  if (rows.length === 0) return [];
  const clients = createAwsClients(config.aws);
  try {
    const network = await checkNetwork(
      clients.ec2,
      config.aws.region,
      rows.map((r) => ({ line: r.line, spec: r.spec }))
    );
    const refusals = await dryRuns(config, clients, rows, opts.batch ?? 'validate');
    return [...network, ...refusals].sort((a, b) => a.line - b.line);
  } catch (err) {
    // Throttling, an unreachable endpoint, missing or expired credentials: nothing known about the rows.
    const e = err as { name?: string; message?: string };
    return [
      {
        line: 0,
        message: `the online checks could not ask EC2 in ${config.aws.region} (${e.name ?? 'Error'}: ${e.message ?? String(err)}). Check AWS_REGION, AWS_ENDPOINT_URL_EC2 and the credentials, or ${opts.skipHint}`,
      },
    ];
  } finally {
    destroyAwsClients(clients);
  }
}
