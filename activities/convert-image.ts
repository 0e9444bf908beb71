/**
 * Converts a qcow2, VHDX, monolithicSparse or flat VMDK image (a boot disk or a data disk) into the
 * stream-optimized VMDK that VM Import takes, with qemu-img, in the site worker's scratch folder
 * (activities/disk-image/scratch.ts; a data disk's folder lies inside its VM's):
 *
 * - the scratch space is checked against what the conversion needs before it starts;
 * - qemu-img writes `disk.vmdk.partial`; once it exits the file is fsync'd, renamed to `disk.vmdk`, the
 *   folder fsync'd, and only then is the marker `disk.vmdk.done` written (the same way): a retry after a
 *   crash finds either a marker (the conversion is kept, not done again) or no marker (whatever is there is
 *   deleted and the conversion redone);
 * - qemu-img dies with the worker (its parent-death signal, through util-linux setpriv where present), so a
 *   killed worker leaves no converter writing behind the retry's back;
 * - the activity heartbeats qemu-img's progress, so a killed worker's conversion is retried within the
 *   heartbeat timeout;
 * - the guest inside the converted VMDK is inspected (activities/guest) before the upload: pre-flight cannot
 *   read inside a qcow2 or VHDX, so this is where a guest VM Import would refuse is stopped (GuestRefused).
 */
import { ApplicationFailure } from '@temporalio/common';
import { spawn } from 'node:child_process';
import { access, constants, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ConvertInput, ConvertResult } from '../common/contracts/activity-io';
import { FailureType } from '../common/failures';
import { activityLog, cancellationSignal, heartbeat } from './activity-context';
import { openImage } from './disk-image/image-file';
import { scratchBytesFor } from './disk-image/intake';
import { guestRefusalText, inspectRow } from './guest/row-checks';
import { qemuDataBytes, qemuInfo } from './disk-image/qemu-img';
import type { ScratchConfig } from './disk-image/scratch';
import { RESERVATION, checkScratchSpace, scratchFolder } from './disk-image/scratch';

export interface ConvertDeps {
  scratch: ScratchConfig;
  imageRoots?: readonly string[];
  /** @default 'qemu-img' */
  qemuImg?: string;
  /** @default 5 s */
  heartbeatIntervalMs?: number;
}

export const CONVERTED_NAME = 'disk.vmdk';

interface Marker {
  version: 1;
  /** The source converted (device, inode, host): a marker of another file is not this conversion. */
  source: { device: string; inode: string; host?: string };
  bytes: number;
}

/** Writes `file` durably: a temporary file, fsync'd, renamed over it, the folder fsync'd. */
async function writeDurably(file: string, content: string): Promise<void> {
  const temporary = `${file}.tmp`;
  const handle = await open(temporary, 'w');
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
  await syncFolder(path.dirname(file));
}

async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The earlier attempt's finished conversion of this very source, if there is one. */
async function finishedEarlier(folder: string, source: Marker['source']): Promise<Marker | undefined> {
  try {
    const marker = JSON.parse(await readFile(path.join(folder, `${CONVERTED_NAME}.done`), 'utf8')) as Marker;
    const same =
      marker.version === 1 &&
      marker.source.device === source.device &&
      marker.source.inode === source.inode &&
      marker.source.host === source.host;
    return same && Number.isSafeInteger(marker.bytes) ? marker : undefined;
  } catch {
    return undefined;
  }
}

/** Deletes the files directly in `folder` (not its sub-folders); a missing folder is fine. */
async function removeFilesIn(folder: string): Promise<void> {
  for (const e of await readdir(folder, { withFileTypes: true }).catch(() => [])) {
    if (!e.isDirectory()) await rm(path.join(folder, e.name), { force: true });
  }
}

let setprivPresent: Promise<boolean> | undefined;
/** util-linux setpriv sets the child's parent-death signal (Node's spawn cannot). */
function hasSetpriv(): Promise<boolean> {
  setprivPresent ??= access('/usr/bin/setpriv', constants.X_OK).then(
    () => process.platform === 'linux',
    () => false
  );
  return setprivPresent;
}

/** Runs `qemu-img convert -p`, heartbeating its percentage; rejects with its last error line. */
async function runConvert(deps: ConvertDeps, args: string[], label: string): Promise<void> {
  const qemuImg = deps.qemuImg ?? 'qemu-img';
  const [command, argv] = (await hasSetpriv())
    ? ['/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', qemuImg, ...args]]
    : [qemuImg, args];
  const signal = cancellationSignal();
  let percent = 0;
  let errors = '';
  const ticker = setInterval(() => heartbeat({ percent }), deps.heartbeatIntervalMs ?? 5_000);
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
      const onAbort = (): void => void child.kill('SIGKILL');
      signal?.addEventListener('abort', onAbort, { once: true });
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        const last = [...chunk.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)].at(-1);
        if (last) percent = Number(last[1]);
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (errors = (errors + chunk).slice(-2000)));
      child.on('error', reject);
      child.on('close', (code, killedBy) => {
        signal?.removeEventListener('abort', onAbort);
        if (code === 0) return resolve();
        if (signal?.aborted) return reject(signal.reason instanceof Error ? signal.reason : new Error('cancelled'));
        const why = errors.trim().split('\n').at(-1) ?? `exit ${code ?? killedBy}`;
        reject(
          ApplicationFailure.retryable(
            `qemu-img could not convert ${label} to a stream-optimized VMDK: ${why}`,
            FailureType.Unexpected
          )
        );
      });
    });
  } finally {
    clearInterval(ticker);
  }
}

export async function convertImage(deps: ConvertDeps, input: ConvertInput): Promise<ConvertResult> {
  const roots = deps.imageRoots ?? [];
  // Still pre-flight's file, read where it really is (a flat VMDK's extents lie beside it).
  const source = await openImage(input.image, roots, input.imageIdentity);
  await source.handle.close();
  const folder = scratchFolder(deps.scratch.dir, input);
  const output = path.join(folder, CONVERTED_NAME);
  const converted = async (reused: boolean): Promise<ConvertResult> => {
    const file = await openImage(output, [deps.scratch.dir]);
    await file.handle.close();
    return { image: output, imageBytes: file.size, imageIdentity: file.identity, reused };
  };
  // The guest in the converted disk, read the way pre-flight reads a VMDK, after every conversion (a kept
  // one too: an earlier attempt may have been refused) and before the upload: a refusal fails the VM here.
  const inspected = async (result: ConvertResult): Promise<ConvertResult> => {
    if (!input.inspectGuest) return result;
    const inspection = await inspectRow(
      { image: result.image, format: 'VMDK', platform: input.inspectGuest.platform },
      { imageRoots: [deps.scratch.dir] }
    );
    activityLog.info('converted guest inspected', { batch: input.batch, vm: input.vm, verdict: inspection.verdict });
    if (inspection.verdict === 'refuse')
      throw ApplicationFailure.nonRetryable(guestRefusalText(inspection), FailureType.GuestRefused, inspection);
    return { ...result, inspection };
  };

  const earlier = await finishedEarlier(folder, source.identity);
  if (earlier) {
    const result = await converted(true).catch(() => undefined);
    if (result && result.imageBytes === earlier.bytes) {
      activityLog.info('conversion found complete; kept', { batch: input.batch, vm: input.vm });
      return inspected(result);
    }
  }
  // Whatever an interrupted attempt left (a partial file, a file without its marker) is redone. Only this
  // conversion's files: the folders inside a VM's are its data disks' conversions (dataDiskLocation).
  await removeFilesIn(folder);

  const qemuImg = deps.qemuImg ?? 'qemu-img';
  const info = await qemuInfo(qemuImg, source.realPath, input.qemuFormat);
  if (!info) {
    throw ApplicationFailure.nonRetryable(
      `qemu-img cannot read ${input.image} as ${input.qemuFormat} (or qemu-img is not installed on this worker: Debian/Ubuntu package qemu-utils).`,
      FailureType.ImageUnreadable
    );
  }
  const data = (await qemuDataBytes(qemuImg, source.realPath, input.qemuFormat)) ?? info.virtualBytes;
  const needed = scratchBytesFor(Math.min(data, info.virtualBytes), info.virtualBytes);
  await checkScratchSpace(deps.scratch, folder, needed);
  await writeFile(path.join(folder, RESERVATION), JSON.stringify({ bytes: needed }));

  const partial = `${output}.partial`;
  activityLog.info('conversion started', { batch: input.batch, vm: input.vm, from: input.qemuFormat, needed });
  await runConvert(
    deps,
    [
      'convert',
      '-p',
      '-f',
      input.qemuFormat,
      '-O',
      'vmdk',
      '-o',
      'subformat=streamOptimized',
      source.realPath,
      partial,
    ],
    input.image
  );
  const handle = await open(partial, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(partial, output);
  await syncFolder(folder);
  const result = await converted(false);
  const marker: Marker = { version: 1, source: source.identity, bytes: result.imageBytes };
  await writeDurably(path.join(folder, `${CONVERTED_NAME}.done`), JSON.stringify(marker));
  await rm(path.join(folder, RESERVATION), { force: true });
  activityLog.info('conversion finished', { batch: input.batch, vm: input.vm, bytes: result.imageBytes });
  return inspected(result);
}
