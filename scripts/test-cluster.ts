/**
 * `npm run test:cluster`: the cluster scenarios (test/cluster) on a supported Node, as `npm test` runs the
 * rest: on a machine whose own node is older than the minimum line, on that line's pinned release.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../dev/services';
import { rerunOnSupportedNode } from '../dev/node-runtime';

async function main(): Promise<number> {
  const log = (line: string): void => console.log(`[test:cluster] ${line}`);
  const args = process.argv.slice(2);
  const rerun = await rerunOnSupportedNode(__filename, args, { log });
  if (rerun !== undefined) return rerun;
  log(`node ${process.version}`);
  const files = args.length > 0 ? args : [path.join(REPO_ROOT, 'test', 'cluster', 'cluster.test.ts')];
  return new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], {
      stdio: 'inherit',
      cwd: REPO_ROOT,
    });
    child.on('exit', (c) => resolve(c ?? 1));
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  }
);
