/**
 * `npm run cluster`: builds what is missing (temporal-server, temporal-sql-tool, temporal-ui-server with
 * `go install`), starts PostgreSQL, the four Temporal services and the Web UI (dev/cluster.ts), registers
 * vmconvoy's search attributes with `vmconvoy setup`, prints the endpoints and runs until Ctrl-C, which
 * stops every process and exits 0.
 *
 *   npm run cluster [-- --dir DIR] [--fresh] [--no-ui] [--no-setup]
 *
 * State (PostgreSQL's data, logs) lives in DIR (default: vmconvoy-cluster in the system's temporary
 * folder), so a second start continues the first one's workflows. Ports: 7233 for the frontend, 8080 for
 * the UI and 5433 for PostgreSQL when free (else any free port, and said so); the rest are free ports.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Cluster } from './cluster';
import { startCluster } from './cluster';
import { REPO_ROOT } from './services';

const log = (line: string): void => console.log(`[cluster] ${line}`);

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function preferred(port: number, label: string): Promise<number | undefined> {
  if (await portIsFree(port)) return port;
  log(`${label}: port ${port} is busy, taking a free one`);
  return undefined;
}

function parseArgs(argv: string[]): { dir: string; fresh: boolean; ui: boolean; setup: boolean } {
  const out = { dir: path.join(os.tmpdir(), 'vmconvoy-cluster'), fresh: false, ui: true, setup: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--dir') out.dir = path.resolve(argv[++i] ?? '');
    else if (arg === '--fresh') out.fresh = true;
    else if (arg === '--no-ui') out.ui = false;
    else if (arg === '--no-setup') out.setup = false;
    else
      throw new Error(
        `unknown argument ${arg} (usage: npm run cluster [-- --dir DIR] [--fresh] [--no-ui] [--no-setup])`
      );
  }
  return out;
}

/** `vmconvoy setup` against the cluster, as an operator would run it. */
function vmconvoySetup(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'vmconvoy.js'), 'setup'], {
      env: { ...process.env, TEMPORAL_ADDRESS: address, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

function describe(cluster: Cluster, dir: string): string {
  const pg = cluster.pg;
  return [
    `Temporal frontend (gRPC)  ${cluster.address}    export TEMPORAL_ADDRESS=${cluster.address}`,
    `Temporal Web UI           ${cluster.uiUrl ?? '(not started)'}`,
    `PostgreSQL                postgresql://${pg.user}:${pg.password}@${pg.host}:${pg.port}/temporal (and /temporal_visibility)`,
    `metrics                   ${Object.entries(cluster.metricsUrls)
      .map(([s, url]) => `${s} ${url}`)
      .join(', ')}`,
    `state and logs            ${dir} (logs/<service>.log)`,
  ].join('\n');
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.fresh) await rm(args.dir, { recursive: true, force: true });
  const started = Date.now();
  const cluster = await startCluster({
    dir: args.dir,
    ui: args.ui,
    ports: {
      frontend: await preferred(7233, 'frontend'),
      ui: args.ui ? await preferred(8080, 'Web UI') : undefined,
      postgres: await preferred(5433, 'PostgreSQL'),
    },
    log,
  });
  log(`started in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  let stopping: Promise<void> | undefined;
  let firstSignalAt = 0;
  const stop = (signal: string): void => {
    if (stopping) {
      // One Ctrl-C arrives twice under `npm run` (from the terminal, and forwarded by npm): only a later
      // one is a person insisting.
      if (Date.now() - firstSignalAt < 2000) return;
      log(`${signal} again: killing every process now`);
      process.exit(130);
    }
    firstSignalAt = Date.now();
    log(`${signal}: stopping every process (again to force)`);
    stopping = cluster.stop();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  if (args.setup) {
    const code = await vmconvoySetup(cluster.address);
    if (code !== 0) log(`vmconvoy setup exited ${code}; run it again by hand (TEMPORAL_ADDRESS=${cluster.address})`);
  }
  console.log(`\n${describe(cluster, args.dir)}\n\nCtrl-C stops the cluster.`);
  // Stay up until a signal starts the stop, then wait for it.
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (stopping) {
        clearInterval(timer);
        resolve();
      }
    }, 200);
  });
  await stopping;
  log('stopped');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`[cluster] ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  }
);
