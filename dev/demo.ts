/**
 * `npm run demo`: the whole product on a laptop with no AWS account. Starts the local environment, makes
 * the example guest disks (dev/demo-images.ts), validates examples/inventory.csv (each guest inspected; an old
 * CentOS 4 kernel is refused before anything is uploaded), migrates the other rows with the real CLI (live
 * progress), prints the report and the Temporal UI link. The simulator judges each disk by its content, as
 * EC2 does: one VM (a mainline kernel GRUB boots by default) fails at AWS on purpose. The demo exits 0 when
 * exactly legacy-01 was refused at validate and exactly batch-01 failed, each with its message.
 *
 *   npm run demo [-- --keep-open] [-- --keep-state]
 */
// The AWS SDK warns about Node 20 on every client; the demo's output is for the migration.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { batchUiLink } from '../client/settings';
import type { DemoImages } from './demo-images';
import { EXPECTED_FAILURE, EXPECTED_REFUSAL, makeDemoImages } from './demo-images';
import { describeLocalEnv, envVarsFor, startLocalEnv } from './local-env';
import { REPO_ROOT } from './services';
import { resolveQemuImg } from './tools';
import { rerunOnSupportedNode } from './node-runtime';

function cli(args: string[], env: NodeJS.ProcessEnv, capture = false): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'vmconvoy.js'), ...args], {
      env: { ...process.env, ...env },
      cwd: REPO_ROOT,
      stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'],
    });
    let stdout = '';
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout }));
  });
}

/**
 * What `validate --json` refuses, and the inventory without those rows beside it: the demo starts the rest,
 * as an operator would after reading the refusals. (The demo's CSV has no quoted or multi-line cells.)
 */
async function withoutRefusedRows(
  inventory: string,
  env: NodeJS.ProcessEnv
): Promise<{ names: string[]; messages: string[]; rest: string }> {
  const result = JSON.parse((await cli(['validate', inventory, '--json'], env, true)).stdout) as {
    errors?: Array<{ line: number; message: string }>;
  };
  const errors = result.errors ?? [];
  const lines = (await readFile(inventory, 'utf8')).trimEnd().split('\n');
  const refused = new Set(errors.map((e) => e.line));
  const rest = path.join(path.dirname(inventory), 'inventory-started.csv');
  await writeFile(rest, lines.filter((_, i) => !refused.has(i + 1)).join('\n') + '\n');
  const names = lines.filter((_, i) => refused.has(i + 1)).map((l) => l.split(',')[0]!);
  return { names, messages: errors.map((e) => e.message), rest };
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const rerun = await rerunOnSupportedNode(__filename, args, { log: (line) => console.error(`[demo] ${line}`) });
  if (rerun !== undefined) return rerun;
  const keepOpen = args.includes('--keep-open');
  const stateDir = path.join(REPO_ROOT, '.vmconvoy', 'demo');
  const started = Date.now();
  if (!args.includes('--keep-state')) await rm(stateDir, { recursive: true, force: true });
  if (!(await resolveQemuImg())) throw new Error('qemu-img is needed for the demo images: install qemu-utils');

  // The images are made while the servers start: both take seconds.
  console.log(
    '== making the example guest disks (sfdisk, mke2fs, mkntfs, qemu-img), starting the local environment (Temporal + Web UI, S3, EC2 simulator, worker)'
  );
  const images = makeDemoImages(
    path.join(REPO_ROOT, 'examples', 'inventory.csv'),
    path.join(REPO_ROOT, 'examples', 'images')
  );
  const local = await startLocalEnv({
    stateDir,
    // Conversions in seconds rather than the real tens of minutes; the disks are judged by content (the default).
    simConfig: { speed: { conversionBytesPerSecond: 64 * 1024 * 1024, stepSeconds: 0.5, pendingPollMs: 300 } },
  }).catch(async (err: unknown) => {
    await images.catch(() => undefined);
    throw err;
  });
  let made: DemoImages;
  try {
    made = await images;
  } catch (err) {
    await local.stop();
    throw err;
  }
  if (!made.windows)
    console.log(
      'Windows guests cannot be built here (they need ntfs-3g with a FUSE mount, and hivex): win-app-01 and win-db-01 are Linux guests' +
        ` (${path.relative(REPO_ROOT, made.inventory)})`
    );
  console.log(describeLocalEnv(local.info, stateDir));
  const env = { ...envVarsFor(local.info), VMCONVOY_ENV_FILE: path.join(stateDir, 'env.json') };
  try {
    const batch = `demo-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '')}`;
    const checked = path.relative(REPO_ROOT, made.inventory);
    console.log(`\n== vmconvoy validate ${checked}`);
    await cli(['validate', checked], env);
    const refused = await withoutRefusedRows(made.inventory, env);
    console.log(
      `\n${refused.names.join(', ') || 'no VM'} refused at validate (nothing uploaded); the other rows go on (${path.relative(REPO_ROOT, refused.rest)})`
    );
    const inventory = path.relative(REPO_ROOT, refused.rest);
    console.log(`\n== vmconvoy start ${inventory} --batch ${batch} --wait`);
    const run = await cli(
      ['start', inventory, '--batch', batch, '--max-uploads', '4', '--max-conversions', '5', '--wait'],
      env
    );
    console.log(`\n== vmconvoy report ${batch} --format md`);
    await cli(['report', batch, '--format', 'md'], env);
    // The page to hand on: a timeline of every VM's phases, slots and uplink over time, failures with fixes.
    const htmlReport = path.join(stateDir, `${batch}-report.html`);
    console.log(`\n== vmconvoy report ${batch} --format html --out ${htmlReport}`);
    await cli(['report', batch, '--format', 'html', '--out', htmlReport], env);
    const status = JSON.parse((await cli(['status', batch, '--json'], env, true)).stdout) as {
      vms: Array<{ name: string; phase: string; error: string | null }>;
    };
    const failed = status.vms.filter((v) => v.phase !== 'Completed');
    console.log(`\nTemporal Web UI, the batch:   ${batchUiLink(env, 'default', batch)}`);
    console.log(
      `Temporal Web UI, all its VMs: ${local.info.temporalUiUrl}/namespaces/default/workflows?query=${encodeURIComponent(`MigrationBatch="${batch}"`)}`
    );
    console.log(`The batch report (open it in a browser): ${htmlReport}`);
    console.log(`demo finished in ${Math.round((Date.now() - started) / 1000)} s`);
    // As planned: exactly legacy-01 failed, and with EC2's kernel message (not some other failure).
    const asPlanned =
      refused.names.join() === EXPECTED_REFUSAL.vm &&
      refused.messages.some((m) => m.includes(EXPECTED_REFUSAL.message)) &&
      run.code === 2 &&
      failed.length === 1 &&
      failed[0]!.name === EXPECTED_FAILURE.vm &&
      (failed[0]!.error ?? '').includes(EXPECTED_FAILURE.message);
    if (asPlanned)
      console.log(
        `${status.vms.length - 1} VMs migrated; ${EXPECTED_REFUSAL.vm} refused at validate and ${EXPECTED_FAILURE.vm} failed at AWS, on purpose (see their messages above).`
      );
    else
      console.error(
        `unexpected outcome: exit ${run.code}, not completed: ${failed.map((v) => `${v.name} (${v.error ?? v.phase})`).join(', ') || 'none'}`
      );
    if (keepOpen) {
      console.log(`\n--keep-open: the environment stays up; Ctrl-C to stop. In another terminal:`);
      console.log(
        `  VMCONVOY_ENV_FILE=${path.relative(process.cwd(), path.join(stateDir, 'env.json'))} node bin/vmconvoy.js status ${batch}`
      );
      await new Promise<void>((resolve) => process.once('SIGINT', resolve));
    }
    return asPlanned ? 0 : 1;
  } finally {
    await local.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
);
