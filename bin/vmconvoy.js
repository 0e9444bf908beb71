#!/usr/bin/env node
// The vmconvoy command: runs client/main.ts under `node --import tsx`, which registers tsx for both require()
// and the import() of lazily loaded commands (dev, worker, sim, setup, codec-server). Signals go to the
// child (Ctrl-C stops `vmconvoy dev` cleanly) and its exit code is ours.
const { spawn } = require('node:child_process');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

// By absolute URL: `--import tsx` would resolve from the user's current directory.
const tsxLoader = pathToFileURL(
  path.join(path.dirname(require.resolve('tsx/package.json')), 'dist', 'loader.mjs')
).href;
const child = spawn(
  process.execPath,
  ['--import', tsxLoader, path.join(__dirname, '..', 'client', 'main.ts'), ...process.argv.slice(2)],
  {
    stdio: 'inherit',
  }
);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
