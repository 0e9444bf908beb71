/**
 * `vmconvoy plan` and `vmconvoy status --watch` through the binary, against a real Temporal server, S3
 * server and EC2 simulator with a worker started as an operator starts one: the forecast as a table and as
 * JSON, calibrated from a finished batch; the watch as plain lines when stdout is not a terminal, and on a
 * pseudo-terminal (util-linux `script`) redrawn in place, ending with the cursor shown again.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { ServiceProcess } from '../../dev/process';
import { makeImage } from '../helpers/images';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import { startS3, startSim, startTemporal, tempDir } from '../helpers/testbed';
import { spawnCliWorker, testbedEnv, runCli, VMCONVOY_BIN } from './run-cli';

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let dir: { dir: string; remove(): Promise<void> };
let worker: ServiceProcess;
let env: NodeJS.ProcessEnv;
let csv: string;
const stamp = Date.now().toString(36);
/** Conversions of about 2 s for the 8 MiB images: long enough for a watch to see them. */
const SPEED = { conversionBytesPerSecond: 4 * 1024 * 1024, stepSeconds: 0.2, pendingPollMs: 200 };

before(async () => {
  [temporal, s3, sim, dir] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim({ config: { speed: SPEED } }),
    tempDir('vmconvoy-e2e-plan-'),
  ]);
  env = testbedEnv({ temporal, s3, sim, dir: dir.dir }, 'e2e-plan', {
    ...(process.env.NODE_PATH ? { NODE_PATH: process.env.NODE_PATH } : {}),
  });
  await Promise.all([
    makeImage(dir.dir, 'a.raw', 'raw', { virtualMiB: 8, randomMiB: 8 }),
    makeImage(dir.dir, 'b.raw', 'raw', { virtualMiB: 16, randomMiB: 16 }),
    makeImage(dir.dir, 'c.vhd', 'fixed-vhd', { virtualMiB: 8, randomMiB: 1 }),
  ]);
  csv = path.join(dir.dir, 'inv.csv');
  await writeFile(
    csv,
    [
      'name,image,architecture,instance_type,wave,inspection',
      'a-01,a.raw,x86_64,t2.micro,1,skip',
      'b-01,b.raw,x86_64,t2.micro,1,skip',
      'a-02,a.raw,x86_64,t2.micro,1,skip',
      'c-01,c.vhd,x86_64,t2.micro,2,skip',
    ].join('\n') + '\n'
  );
  worker = await spawnCliWorker(env, dir.dir);
});

after(async () => {
  await worker?.stop();
  await Promise.all([sim?.stop(), s3?.stop()]);
  await temporal?.stop();
  await dir?.remove();
});

const vmconvoy = (...args: string[]) => runCli(args, env, dir.dir);

interface PlanJson {
  ok: boolean;
  limits: { maxUploads: number; maxConversions: number; maxInFlight: number };
  rates: {
    uplinkBytesPerSecond: number;
    conversionSecondsPerGiB: number;
    conversionOverheadSeconds: number;
    importSeconds: number;
  };
  calibratedFrom: { batch: string; basis: string[] } | null;
  forecast: {
    makespan: number;
    boundBy: string;
    waves: Array<{ wave: number; vms: number; start: number; end: number }>;
    vms: Array<{ name: string; wave: number; uploadBytes: number; start: number; end: number }>;
  };
}

test('plan: the forecast as a table and as JSON, from the inventory and the flags', async () => {
  const table = await vmconvoy('plan', csv, '--uplink', '100MB/s', '--conversion-limit', '2');
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^plan for .*inv\.csv: 4 VMs in 2 waves, about \d+ min/m);
  assert.match(table.stdout, /bounded by the conversion quota/);
  assert.match(table.stdout, /limits: 4 uploads, 2 conversions, 8 in flight/);
  assert.match(table.stdout, /uplink 100\.0 MB\/s/);
  assert.match(table.stdout, /│ b-01 +│ 1 +│ 16\.0 MiB │ \+0 s/);

  const run = await vmconvoy('plan', csv, '--uplink', '100MB/s', '--conversion-limit', '2', '--json');
  assert.equal(run.code, 0, run.stderr);
  const plan = JSON.parse(run.stdout) as PlanJson;
  assert.equal(plan.ok, true);
  assert.equal(plan.limits.maxConversions, 2);
  assert.equal(plan.rates.uplinkBytesPerSecond, 100e6);
  assert.deepEqual(
    plan.forecast.vms.map((v) => [v.name, v.wave, v.uploadBytes]),
    [
      ['a-01', 1, 8 * 1024 * 1024],
      ['b-01', 1, 16 * 1024 * 1024],
      ['a-02', 1, 8 * 1024 * 1024],
      ['c-01', 2, 8 * 1024 * 1024 + 512],
    ]
  );
  const [w1, w2] = plan.forecast.waves;
  assert.ok(w2!.start >= w1!.end, 'wave 2 starts once wave 1 has ended');
  // Two slots for three 10-minute conversions: the third waits for one.
  assert.ok(w1!.end > 2 * 600, `wave 1 ends at ${w1!.end}`);
  assert.equal(plan.forecast.makespan, w2!.end);

  const bad = await vmconvoy('plan', csv, '--uplink', 'fast');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--uplink: give a rate such as 200MB\/s/);
});

/** Runs the binary under a pseudo-terminal of 100 × 12 (util-linux `script`); returns all it wrote. */
function underTerminal(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<{ code: number; screen: string }> {
  const command = ['stty cols 100 rows 12;', 'exec', process.execPath, VMCONVOY_BIN, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      env: { ...env, TERM: 'xterm-256color', ...extra },
    });
    let screen = '';
    child.stdout.on('data', (c: Buffer) => (screen += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? 1, screen }));
  });
}

test('status --watch: plain progress lines without a terminal, a frame redrawn in place on one; plan --from-batch', async () => {
  const batch = `watch-${stamp}`;
  const started = await vmconvoy('start', csv, '--batch', batch, '--max-conversions', '2');
  assert.equal(started.code, 0, started.stderr);
  const watched = await vmconvoy('status', batch, '--watch');
  assert.equal(watched.code, 0, watched.stderr);
  const lines = watched.stdout.split('\n');
  assert.ok(
    lines.some((l) => /^\d\d:\d\d:\d\d b-01 Converting$/.test(l)),
    watched.stdout
  );
  assert.ok(
    lines.some((l) => /^\d\d:\d\d:\d\d c-01 Completed i-/.test(l)),
    watched.stdout
  );
  assert.ok(
    lines.some((l) => new RegExp(`^\\d\\d:\\d\\d:\\d\\d batch ${batch}: running, 4 VMs · ETA \\d`).test(l)),
    `a batch line with its ETA:\n${watched.stdout}`
  );
  assert.ok(!watched.stdout.includes('\x1b'), 'no escape codes without a terminal');
  assert.match(watched.stdout, /batch .*: completed, 4 VMs\n0 pending, .* 4 completed/, 'the final table');

  const status = await vmconvoy('status', batch);
  assert.match(status.stdout, /conversions at once in its account and region now: 2\n/);

  const calibrated = JSON.parse((await vmconvoy('plan', csv, '--from-batch', batch, '--json')).stdout) as PlanJson;
  assert.equal(calibrated.calibratedFrom?.batch, batch);
  assert.match(calibrated.calibratedFrom.basis.join(', '), /uplink from 4 uploads, conversion rate from 4 conversions/);
  // The simulator converts an 8 MiB image in 2 s; the first poll, after 5 s, sees it complete (the
  // midpoint of the last two looks is what calibration takes).
  const r = calibrated.rates;
  const eightMiB = r.conversionOverheadSeconds + (r.conversionSecondsPerGiB * 8) / 1024;
  assert.ok(eightMiB > 1 && eightMiB < 10, `an 8 MiB conversion by the measured rates: ${eightMiB} s`);
  const rows = JSON.parse((await vmconvoy('report', batch, '--json')).stdout) as Array<{
    started_at: string;
    finished_at: string;
  }>;
  const measured =
    (Math.max(...rows.map((x) => Date.parse(x.finished_at))) - Math.min(...rows.map((x) => Date.parse(x.started_at)))) /
    1000;
  const planned = calibrated.forecast.makespan;
  const uncalibrated = (JSON.parse((await vmconvoy('plan', csv, '--json')).stdout) as PlanJson).forecast.makespan;
  console.log(
    `[e2e] plan --from-batch: forecast ${planned.toFixed(1)} s, the batch took ${measured.toFixed(1)} s (defaults: ${uncalibrated.toFixed(0)} s)`
  );
  // The measured rates replace the defaults (minutes per conversion); how close the forecast comes is a
  // benchmark's figure (bench/README, makespan), not a timed assertion on a loaded test machine.
  assert.ok(planned > 0 && planned < uncalibrated / 10, `calibrated ${planned} s vs defaults ${uncalibrated} s`);

  const tty = `tty-${stamp}`;
  assert.equal((await vmconvoy('start', csv, '--batch', tty)).code, 0);
  // Started without --max-conversions: the account+region keeps the limit the first batch set.
  const running = await vmconvoy('status', tty);
  assert.match(running.stdout, /limits: 4 uploads, 2 conversions in force \(batch asked 5\), 14 in flight/);
  const { code, screen } = await underTerminal(['status', tty, '--watch'], { NO_COLOR: '' });
  await writeFile(path.join(dir.dir, 'screen.txt'), screen);
  assert.equal(code, 0, screen);
  assert.match(screen, new RegExp(`batch ${tty}: completed, 4 VMs`));
  assert.ok(screen.includes('\x1b[?25l'), 'the cursor is hidden while drawing');
  assert.ok(screen.lastIndexOf('\x1b[?25h') > screen.lastIndexOf('\x1b[?25l'), 'and shown again at the end');
  assert.ok(!screen.includes('\x1b[2J') && !screen.includes('\x1b[H'), 'no clearing of the screen, no jump home');
  assert.ok(screen.includes('\x1b[1m'), 'colours on a terminal');
  const noColor = await underTerminal(['status', tty, '--watch']);
  assert.equal(noColor.code, 0, noColor.screen);
  assert.ok(!noColor.screen.includes('\x1b[1m'), 'NO_COLOR (set by baseEnv) holds on a terminal');
});
