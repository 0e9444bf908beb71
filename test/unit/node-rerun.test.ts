/**
 * Scripts started on a node older than the minimum line move to that line's pinned release
 * (dev/node-runtime.ts rerunOnSupportedNode): here `npm run test:cluster`'s entry, started on the machine's
 * own older node when it has one, must run its test files on Node 22 or later. On a machine whose node is
 * already new enough there is nothing to move, and the test checks it ran there as it is.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { MINIMUM_NODE_LINE, majorOf } from '../../dev/node-runtime';
import { findOnPath } from '../../dev/tools';

const exec = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');

/** The first `node` on PATH that is not the one running the tests (npm test puts its own first). */
async function machineNode(): Promise<string | undefined> {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== path.dirname(process.execPath));
  return findOnPath('node', { ...process.env, PATH: dirs.join(path.delimiter) });
}

test('test:cluster started on an older node runs its tests on the minimum line', async () => {
  const node = (await machineNode()) ?? process.execPath;
  const { stdout: version } = await exec(node, ['--version']);
  // Without the runner's marker: inside it, node --test reports to this runner instead of printing.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const { stdout } = await exec(
    node,
    ['--import', 'tsx', 'scripts/test-cluster.ts', path.join(ROOT, 'test', 'fixtures', 'prints-node-version.test.ts')],
    { cwd: ROOT, env: { ...env, PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH ?? ''}` } }
  );
  const ran = /fixture node (v[\d.]+)/.exec(stdout)?.[1];
  assert.ok(ran, stdout);
  if (majorOf(version.trim()) < MINIMUM_NODE_LINE) {
    assert.match(stdout, /older than the minimum/);
    assert.ok(majorOf(ran) >= MINIMUM_NODE_LINE, `ran on ${ran}`);
  } else assert.equal(ran, version.trim());
});
