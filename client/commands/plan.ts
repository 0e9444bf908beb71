/**
 * `vmconvoy plan <csv>`: how long the batch will take, before it starts. The inventory is read and checked
 * as `validate` does, each image pre-flighted for its size, and the fleet's rules played forward with the
 * forecast model (client/forecast/): when every wave and VM starts and ends, the makespan, and what bounds
 * it. `--from-batch` takes the rates a finished batch measured instead of the defaults.
 */
import { InvalidArgumentError } from 'commander';
import { preflight } from '../../activities/disk-image/preflight';
import { ExitError } from '../errors';
import type { InventoryProblem } from '../inventory/read-inventory';
import { readInventory } from '../inventory/read-inventory';
import { mapLimited } from '../map-limited';
import { CSV_ARGUMENT, jsonOption, positiveInt } from '../options';
import { PLAN_VIEW } from '../output/plan';
import { calibrate } from '../forecast/calibrate';
import { measureBatch } from '../forecast/measure';
import type { ForecastRates } from '../forecast/rates';
import { DEFAULT_RATES, parseDuration, parseRate } from '../forecast/rates';
import type { Forecast, ForecastLimits, ForecastVm } from '../forecast/simulate';
import { forecast } from '../forecast/simulate';
import type { CommandSpec } from './command';
import { DEFAULT_LIMITS } from './start';

export interface PlanFlags {
  uplink?: number;
  perUpload?: number;
  maxUploads?: number;
  conversionLimit?: number;
  maxInFlight?: number;
  canary?: number;
  conversionPerGib?: number;
  conversionOverhead?: number;
  size: 'image' | 'virtual';
  fromBatch?: string;
  json?: boolean;
}

export type PlanResult =
  | {
      ok: true;
      csv: string;
      sizes: 'image' | 'virtual';
      limits: Required<ForecastLimits>;
      rates: ForecastRates;
      /** The batch the rates were measured on, and from how many VMs. */
      calibratedFrom: { batch: string; basis: string[] } | null;
      forecast: Forecast;
    }
  | { ok: false; errors: InventoryProblem[] };

const rate =
  (flag: string) =>
  (value: string): number => {
    const n = parseRate(value);
    if (n === undefined) throw new InvalidArgumentError(`${flag}: give a rate such as 200MB/s, 1Gbit/s or 1.5GiB/s`);
    return n;
  };
const duration =
  (flag: string) =>
  (value: string): number => {
    const n = parseDuration(value);
    if (n === undefined) throw new InvalidArgumentError(`${flag}: give seconds, or a duration such as 90s, 3m, 1h`);
    return n;
  };

/** Image bytes (what is uploaded) and the bytes EC2 converts: the image, or with --size virtual the disk. */
async function vmSizes(
  rows: Awaited<ReturnType<typeof readInventory>> & { ok: true },
  size: PlanFlags['size'],
  imageRoots: readonly string[]
): Promise<ForecastVm[]> {
  return mapLimited(rows.rows, 16, async ({ spec }) => {
    const image = await preflight(
      { image: spec.image, format: spec.format, volumeSizeGib: spec.volumeSizeGib },
      { imageRoots, qemuImg: false }
    );
    return {
      name: spec.name,
      wave: spec.wave,
      uploadBytes: image.imageBytes,
      convertBytes: size === 'virtual' ? image.virtualBytes : image.imageBytes,
    };
  });
}

export async function planCommand(
  csv: string,
  flags: PlanFlags,
  imageRoots: readonly string[],
  measured?: (batch: string) => ReturnType<typeof measureBatch>
): Promise<PlanResult> {
  const inventory = await readInventory(csv, { imageRoots });
  if (!inventory.ok) return { ok: false, errors: inventory.errors };
  const vms = await vmSizes(inventory, flags.size, imageRoots);
  let rates: ForecastRates = { ...DEFAULT_RATES };
  let calibratedFrom: { batch: string; basis: string[] } | null = null;
  if (flags.fromBatch !== undefined && measured) {
    const m = await measured(flags.fromBatch);
    if (m.length === 0)
      throw new ExitError(1, `batch "${flags.fromBatch}" has no completed VM to measure: pick a batch that finished`);
    const c = calibrate(m, rates);
    rates = c.rates;
    calibratedFrom = { batch: flags.fromBatch, basis: c.basis };
  }
  // What the command line says wins over what was measured.
  if (flags.uplink !== undefined) rates.uplinkBytesPerSecond = flags.uplink;
  if (flags.perUpload !== undefined) rates.perUploadBytesPerSecond = flags.perUpload;
  if (flags.conversionPerGib !== undefined) rates.conversionSecondsPerGiB = flags.conversionPerGib;
  if (flags.conversionOverhead !== undefined) rates.conversionOverheadSeconds = flags.conversionOverhead;
  const maxUploads = flags.maxUploads ?? DEFAULT_LIMITS.maxUploads;
  const maxConversions = flags.conversionLimit ?? DEFAULT_LIMITS.maxConversions;
  const limits: Required<ForecastLimits> = {
    maxUploads,
    maxConversions,
    maxInFlight: flags.maxInFlight ?? maxUploads + 2 * maxConversions,
    canary: flags.canary ?? 0,
  };
  return { ok: true, csv, sizes: flags.size, limits, rates, calibratedFrom, forecast: forecast(vms, rates, limits) };
}

export const planSpec: CommandSpec<PlanFlags, PlanResult> = {
  name: 'plan',
  summary:
    'forecast a batch before starting it: when every wave and VM starts and ends, the makespan, and what bounds it (uplink, conversion quota, or one large VM)',
  arguments: [CSV_ARGUMENT],
  options: [
    {
      flags: '--uplink <rate>',
      description: 'bandwidth every upload shares, e.g. 200MB/s or 1Gbit/s (default: 125MB/s, a 1 Gbit/s link)',
      parse: rate('--uplink'),
    },
    {
      flags: '--per-upload <rate>',
      description: "one VM's upload at most (default: 392MB/s, vmconvoy's uploader in the upload benchmark)",
      parse: rate('--per-upload'),
    },
    {
      flags: '--max-uploads <n>',
      description: `as start: VMs in pre-flight/upload at once (default: ${DEFAULT_LIMITS.maxUploads})`,
      parse: positiveInt('--max-uploads'),
    },
    {
      flags: '--conversion-limit <n>',
      description: `conversions at once in the account and region (default: ${DEFAULT_LIMITS.maxConversions}, as start)`,
      parse: positiveInt('--conversion-limit'),
    },
    {
      flags: '--max-in-flight <n>',
      description: 'VMs started and not finished (default: max-uploads + 2 × conversion-limit, as the fleet)',
      parse: positiveInt('--max-in-flight'),
    },
    {
      flags: '--canary <k>',
      description: 'as start: the first K VMs finish before any other starts',
      parse: positiveInt('--canary'),
    },
    {
      flags: '--conversion-per-gib <duration>',
      description: 'conversion time per GiB of image, e.g. 3m (default: 3m)',
      parse: duration('--conversion-per-gib'),
    },
    {
      flags: '--conversion-overhead <duration>',
      description: 'conversion time whatever the size, e.g. 10m (default: 10m)',
      parse: duration('--conversion-overhead'),
    },
    {
      flags: '--size <which>',
      description:
        "what EC2 converts: the image file's bytes, or the disk's virtual size (a cautious plan for sparse or compressed images)",
      choices: ['image', 'virtual'],
      default: 'image',
    },
    {
      flags: '--from-batch <name>',
      description:
        'the rates a finished batch measured (uplink, conversion per GiB, fixed steps) instead of the defaults; flags still win',
    },
    jsonOption(
      'print {ok, sizes, limits, rates, calibratedFrom, forecast: {makespan, boundSeconds, boundBy, waves, vms}} (seconds from the start)'
    ),
  ],
  examples: [
    'vmconvoy plan examples/inventory.csv --uplink 200MB/s',
    'vmconvoy plan wave-b.csv --from-batch wave-a --json',
  ],
  run: async ({ args: [csv], opts }, ctx) =>
    planCommand(csv!, opts, ctx.env.VMCONVOY_IMAGE_ROOTS?.split(':').filter(Boolean) ?? [], async (batch) =>
      measureBatch(await ctx.client(), batch)
    ),
  view: PLAN_VIEW,
  exit: (result) => (result.ok ? undefined : new ExitError(1, '')),
};
