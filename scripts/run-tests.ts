/**
 * `npm test`: provisions the local tools, starts one Temporal dev server and one S3 server for the whole
 * run (tests share them through VMCONVOY_TEST_* variables and isolate themselves by task queue and bucket),
 * then runs node's test runner over an explicit file list: the runner must know whether any chosen file
 * needs the servers, and a selection that matches nothing must fail, not pass with zero tests.
 *
 * The tests run on a supported Node LTS line (dev/node-runtime.ts): `--node 22` or `--node 24` picks one,
 * and without it a machine whose own node is older than the minimum runs them on the minimum line's
 * pinned release. Either way the whole run (servers, test runner, the workers tests spawn) moves to it.
 *
 * Usage: npm test [-- --node 22|24] [-- unit|integration|e2e|chaos ...] [-- test/x.test.ts|test/dir ...]
 * (test/chaos holds the reduced chaos scenario; the full one is `npm run test:chaos`.)
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { REPO_ROOT, startS3Server, startTemporalServer } from '../dev/services';
import { resolvePythonVenv } from '../dev/python-venv';
import { NODE_RELEASES, isNodeLine, rerunOnSupportedNode } from '../dev/node-runtime';
import { resolveChromium, resolveDiskTools, resolveQemuImg, resolveTemporalCli, resolveVersitygw } from '../dev/tools';

const SUITES = ['unit', 'integration', 'e2e', 'chaos'] as const;

function testFiles(dir: string): string[] {
  let out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  for (const name of entries) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out = out.concat(testFiles(full));
    else if (name.endsWith('.test.ts')) out.push(full);
  }
  return out.sort();
}

/** `--node N` / `--node=N` out of the arguments: the Node line asked for, and the other arguments. */
function nodeOption(args: string[]): { line: number | undefined; rest: string[] } {
  const rest: string[] = [];
  let line: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--node') line = Number(args[++i]);
    else if (a.startsWith('--node=')) line = Number(a.slice('--node='.length));
    else rest.push(a);
  }
  return { line, rest };
}

async function main(): Promise<number> {
  const log = (line: string): void => console.log(`[test] ${line}`);
  const { line, rest: args } = nodeOption(process.argv.slice(2));
  if (line !== undefined && !isNodeLine(line)) {
    console.error(`--node ${line}: the supported lines are ${Object.keys(NODE_RELEASES).join(' and ')}`);
    return 1;
  }
  const rerun = await rerunOnSupportedNode(__filename, args, { line, log });
  if (rerun !== undefined) return rerun;
  log(`node ${process.version}`);

  const explicit = args.filter((a) => a.endsWith('.test.ts'));
  const dirs = args.filter((a) => !a.endsWith('.test.ts') && existsSync(a) && statSync(a).isDirectory());
  const suites = args.filter((a) => (SUITES as readonly string[]).includes(a) && !dirs.includes(a));
  const files =
    explicit.length + dirs.length > 0
      ? [...explicit.map((f) => path.resolve(f)), ...dirs.flatMap((d) => testFiles(path.resolve(d)))]
      : (suites.length > 0 ? suites : SUITES).flatMap((s) => testFiles(path.join(REPO_ROOT, 'test', s)));
  if (files.length === 0) {
    console.error('no test files found');
    return 1;
  }
  const needsServers = files.some((f) => !f.includes(`${path.sep}unit${path.sep}`));

  const started = Date.now();
  const env: NodeJS.ProcessEnv = { ...process.env };
  const stops: Array<() => Promise<void>> = [];
  let stateDir: string | undefined;
  try {
    if (needsServers) {
      // Everything the chosen tests need is provisioned here, so `npm install && npm test` on a fresh machine
      // is the whole set-up (the Web UI test drives Debian's chromium).
      const needsBrowser = files.some((f) => f.includes(`${path.sep}e2e${path.sep}`));
      const [temporalCli, versitygw, qemu, chromium] = await Promise.all([
        resolveTemporalCli({ log }),
        resolveVersitygw({ log }),
        resolveQemuImg({ log }),
        needsBrowser ? resolveChromium({ log }) : Promise.resolve(undefined),
      ]);
      const missingDiskTools = await resolveDiskTools({ log });
      if (missingDiskTools.length > 0) log(`disk tools missing: ${missingDiskTools.join(', ')}`);
      const venv = await resolvePythonVenv({ log });
      log(`python venv:  ${venv.python}`);
      if (needsBrowser) log(`chromium:     ${chromium?.path ?? 'missing'}`);
      log(`temporal CLI: ${temporalCli?.path ?? 'missing'} (${temporalCli?.source ?? '-'})`);
      log(`versitygw:    ${versitygw?.path ?? 'missing'} (${versitygw?.source ?? '-'})`);
      log(`qemu-img:     ${qemu?.path ?? 'missing'}`);
      stateDir = await mkdtemp(path.join(os.tmpdir(), 'vmconvoy-testrun-'));
      const [temporal, s3] = await Promise.all([startTemporalServer(), startS3Server({ dir: stateDir })]);
      stops.push(
        () => temporal.stop(),
        () => s3.stop()
      );
      log(`Temporal dev server ${temporal.address} (Web UI ${temporal.uiUrl}); S3 server ${s3.endpoint}`);
      env.VMCONVOY_TEST_TEMPORAL_ADDRESS = temporal.address;
      env.VMCONVOY_TEST_TEMPORAL_UI = temporal.uiUrl;
      env.VMCONVOY_TEST_S3_ENDPOINT = s3.endpoint;
    }
    // Two files at a time: most of a test's time is spent waiting (conversions, polls, timers, child
    // processes), so two overlap well on two cores; each file isolates itself by task queue, bucket and port.
    const concurrency = Number(process.env.VMCONVOY_TEST_CONCURRENCY ?? 2);
    log(`running ${files.length} test files, ${concurrency} at a time`);
    const code = await new Promise<number>((resolve) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${concurrency}`, ...files],
        { env, stdio: 'inherit', cwd: REPO_ROOT }
      );
      child.on('exit', (c) => resolve(c ?? 1));
    });
    log(`finished in ${Math.round((Date.now() - started) / 1000)} s`);
    return code;
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  }
);
