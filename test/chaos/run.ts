/**
 * `npm run test:chaos`: the full chaos scenario (test/chaos/plans.ts FULL), repeated, then the mutation
 * check (a broken build must fail the suite). Prints every figure; exits 1 on any problem.
 *
 *   npm run test:chaos [-- --runs 3] [-- --reduced] [-- --seed N] [-- --no-mutant] [-- --mutant-only]
 *
 * Needs the local tools (`npm run provision`); starts and stops its own servers on free ports.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT } from '../../dev/services';
import { tempDir } from '../helpers/testbed';
import { buildMutant, NO_IDEMPOTENCY_LOOKUP } from './mutant';
import { FULL, MUTANT, REDUCED } from './plans';
import type { ChaosReport } from './scenario';
import { formatReport, runChaos } from './scenario';

function flag(name: string): boolean {
  return process.argv.includes(name);
}

function value(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const log = (line: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

async function main(): Promise<number> {
  const runs = value('--runs', 3);
  const seed = value('--seed', 1);
  const scenario = flag('--reduced') ? REDUCED : FULL;
  const reports: ChaosReport[] = [];
  let failed = false;
  if (!flag('--mutant-only')) {
    for (let i = 0; i < runs; i++) {
      log(`== chaos run ${i + 1} of ${runs}: ${scenario.vms} VMs, ${scenario.plan.length} disruptions`);
      const report = await runChaos({ ...scenario, seed: seed + i, log });
      reports.push(report);
      for (const line of formatReport(report)) log(line);
      if (report.problems.length > 0) failed = true;
    }
  }
  let mutantCaught: boolean | undefined;
  if (!flag('--no-mutant')) {
    log(`== mutation check: ${NO_IDEMPOTENCY_LOOKUP.name}; the suite must fail`);
    const dir = await tempDir('vmconvoy-mutant-');
    try {
      const workerEntry = await buildMutant(dir.dir, NO_IDEMPOTENCY_LOOKUP);
      const report = await runChaos({ ...MUTANT, seed, workerEntry, log });
      for (const line of formatReport(report)) log(`  mutant: ${line}`);
      mutantCaught = report.problems.some((p) => p.includes(NO_IDEMPOTENCY_LOOKUP.caughtBy));
      log(
        mutantCaught
          ? `mutation caught: the broken build fails the "${NO_IDEMPOTENCY_LOOKUP.caughtBy}" check`
          : 'MUTATION NOT CAUGHT: the suite passed a broken build'
      );
      if (!mutantCaught) failed = true;
    } finally {
      await dir.remove();
    }
  }
  const out = path.join(REPO_ROOT, 'test-artifacts');
  await mkdir(out, { recursive: true });
  await writeFile(path.join(out, 'chaos.json'), `${JSON.stringify({ runs: reports, mutantCaught }, null, 2)}\n`);
  log(
    `${failed ? 'FAIL' : 'PASS'}: ${reports.length} chaos runs${mutantCaught === undefined ? '' : `, mutation ${mutantCaught ? 'caught' : 'NOT caught'}`}; details in test-artifacts/chaos.json`
  );
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  }
);
