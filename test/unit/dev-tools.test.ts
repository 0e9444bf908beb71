/**
 * Provisioning order of the local tools: $TEMPORAL_CLI, PATH, the cache, then `go install`. A stand-in
 * `go` on PATH records whether a build was attempted (and "builds" by writing the binary into GOBIN).
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { resolveTemporalCli, resolveVersitygw } from '../../dev/tools';

let root: string;
let goLog: string;

async function executable(file: string, body = '#!/bin/sh\nexit 0\n'): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, body);
  await chmod(file, 0o755);
  return file;
}

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'vmconvoy-tools-'));
  goLog = path.join(root, 'go.log');
  // `go install MODULE`: log the call and create the binary in $GOBIN, as the real one would.
  await executable(
    path.join(root, 'gobin', 'go'),
    `#!/bin/sh\necho "$@" >> ${goLog}\nname=$(basename "\${3%@*}")\nprintf '#!/bin/sh\\n' > "$GOBIN/$name"\nchmod +x "$GOBIN/$name"\n`
  );
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function goCalls(): Promise<string> {
  return readFile(goLog, 'utf8').catch(() => '');
}

function env(extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: `${path.join(root, 'gobin')}:/usr/bin:/bin`,
    VMCONVOY_CACHE_DIR: path.join(root, 'cache-empty'),
    ...extra,
  };
}

test('TEMPORAL_CLI wins: that binary is used and nothing is built', async () => {
  const mine = await executable(path.join(root, 'mine', 'temporal'));
  const resolved = await resolveTemporalCli({ env: env({ TEMPORAL_CLI: mine }), log: () => undefined });
  assert.deepEqual(resolved, { path: mine, source: 'env' });
  assert.equal(await goCalls(), '', 'go was not invoked');
});

test('TEMPORAL_CLI naming a missing file is an error that says so', async () => {
  await assert.rejects(
    resolveTemporalCli({ env: env({ TEMPORAL_CLI: '/nonexistent/temporal' }) }),
    /TEMPORAL_CLI=\/nonexistent\/temporal is not an executable file/
  );
});

test('then `temporal` on PATH, then the cache, before any build', async () => {
  const onPath = await executable(path.join(root, 'pathbin', 'temporal'));
  const e = env({});
  e.PATH = `${path.join(root, 'pathbin')}:${e.PATH}`;
  assert.deepEqual(await resolveTemporalCli({ env: e }), { path: onPath, source: 'path' });

  const cached = await executable(path.join(root, 'cache', 'bin', 'temporal'));
  assert.deepEqual(await resolveTemporalCli({ env: env({ VMCONVOY_CACHE_DIR: path.join(root, 'cache') }) }), {
    path: cached,
    source: 'cache',
  });
  assert.equal(await goCalls(), '', 'go was not invoked');
});

test('with nothing found, go install builds the pinned versions into the cache', async () => {
  const lines: string[] = [];
  const cacheDir = path.join(root, 'cache-build');
  const temporal = await resolveTemporalCli({ env: env({ VMCONVOY_CACHE_DIR: cacheDir }), log: (l) => lines.push(l) });
  assert.deepEqual(temporal, { path: path.join(cacheDir, 'bin', 'temporal'), source: 'built' });
  const gw = await resolveVersitygw({ env: env({ VMCONVOY_CACHE_DIR: cacheDir }), log: (l) => lines.push(l) });
  assert.equal(gw?.source, 'built');
  const calls = await goCalls();
  assert.match(calls, /install -ldflags=-s -w github\.com\/temporalio\/cli\/cmd\/temporal@v1\.5\.1/);
  assert.match(calls, /install -ldflags=-s -w github\.com\/versity\/versitygw\/cmd\/versitygw@v1\.7\.0/);
  assert.ok(
    lines.some((l) => /takes several minutes/.test(l)),
    'the first build says it takes minutes'
  );
});

test('without Go and without a binary, resolution reports none (the SDK download is the last resort)', async () => {
  const resolved = await resolveTemporalCli({
    env: { PATH: '/usr/bin:/bin', VMCONVOY_CACHE_DIR: path.join(root, 'none') },
  });
  assert.equal(resolved, undefined);
});
