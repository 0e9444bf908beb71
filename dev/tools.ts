/**
 * Provisioning of the local tools vmconvoy's dev environment and tests need: the Temporal CLI (whose
 * `server start-dev` embeds the Web UI), the versitygw S3 server and qemu-img.
 *
 * Nothing is downloaded from outside the package registries at run time: Go tools are built from the Go
 * module proxy into a cache outside the repository (`~/.cache/vmconvoy/bin`), so a fresh clone on the same
 * machine (CI) reuses them.
 */
import { execFile, spawn } from 'node:child_process';
import { access, constants, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Pinned because later Temporal CLI tags carry a `replace` directive that `go install` refuses. */
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';
export const VERSITYGW_MODULE = 'github.com/versity/versitygw/cmd/versitygw@v1.7.0';

export type ToolSource = 'env' | 'path' | 'cache' | 'built';

export interface ResolvedTool {
  path: string;
  source: ToolSource;
}

export interface ResolveOptions {
  env?: NodeJS.ProcessEnv;
  /** Build with `go install` when no binary is found. @default true */
  build?: boolean;
  log?: (line: string) => void;
}

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.VMCONVOY_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'vmconvoy');
}

export function cacheBinDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheDir(env), 'bin');
}

export async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Looks a command up on PATH the way a shell would. */
export async function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Runs `go install MODULE` into the cache; streams go's output so a user sees a long build progressing. */
async function goInstall(module: string, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<void> {
  const go = await findOnPath('go', env);
  if (!go) throw new Error(`cannot build ${module}: Go (>= 1.25) is not on PATH`);
  const bin = cacheBinDir(env);
  await mkdir(bin, { recursive: true });
  log(`building ${module} with go install into ${bin}; the first build takes several minutes`);
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(go, ['install', '-ldflags=-s -w', module], {
      env: { ...env, GOBIN: bin, CGO_ENABLED: '0' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`go install ${module} exited with ${code}`))
    );
  });
  log(`built ${path.basename(module.split('@')[0]!)} in ${Math.round((Date.now() - started) / 1000)} s`);
}

async function resolveGoTool(
  name: string,
  envVar: string,
  module: string,
  opts: ResolveOptions
): Promise<ResolvedTool | undefined> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((line: string) => process.stderr.write(`[vmconvoy] ${line}\n`));
  const fromEnv = env[envVar];
  if (fromEnv) {
    if (!(await isExecutable(fromEnv))) throw new Error(`${envVar}=${fromEnv} is not an executable file`);
    return { path: fromEnv, source: 'env' };
  }
  const onPath = await findOnPath(name, env);
  if (onPath) return { path: onPath, source: 'path' };
  const cached = path.join(cacheBinDir(env), name);
  if (await isExecutable(cached)) return { path: cached, source: 'cache' };
  if (opts.build === false) return undefined;
  if (!(await findOnPath('go', env))) return undefined;
  await goInstall(module, env, log);
  return { path: cached, source: 'built' };
}

/**
 * The Temporal CLI, in this order: `$TEMPORAL_CLI`; `temporal` on PATH; the cache; `go install` into the
 * cache. `undefined` means none could be had, and the caller falls back to the SDK's own download (which
 * only works with internet access).
 */
export function resolveTemporalCli(opts: ResolveOptions = {}): Promise<ResolvedTool | undefined> {
  return resolveGoTool('temporal', 'TEMPORAL_CLI', TEMPORAL_CLI_MODULE, opts);
}

/** The versitygw S3 gateway, resolved like the Temporal CLI (`$VERSITYGW`, PATH, cache, go install). */
export function resolveVersitygw(opts: ResolveOptions = {}): Promise<ResolvedTool | undefined> {
  return resolveGoTool('versitygw', 'VERSITYGW', VERSITYGW_MODULE, opts);
}

/** qemu-img, installed from Debian's qemu-utils when missing and we are root. */
export async function resolveQemuImg(opts: ResolveOptions = {}): Promise<ResolvedTool | undefined> {
  return resolveDebianTool('qemu-img', 'qemu-utils', 'QEMU_IMG', opts);
}

/** Debian's chromium, for the Web UI browser test (playwright-core drives it; no browser download). */
export async function resolveChromium(opts: ResolveOptions = {}): Promise<ResolvedTool | undefined> {
  return resolveDebianTool('chromium', 'chromium', 'CHROMIUM', opts);
}

/** `$ENV_VAR`, then PATH, then (as root, with apt) the Debian package. */
async function resolveDebianTool(
  binary: string,
  pkg: string,
  envVar: string,
  opts: ResolveOptions
): Promise<ResolvedTool | undefined> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((line: string) => process.stderr.write(`[vmconvoy] ${line}\n`));
  const found = env[envVar] ?? (await findOnPath(binary, env));
  if (found) return { path: found, source: env[envVar] ? 'env' : 'path' };
  if (opts.build === false || process.getuid?.() !== 0 || !(await findOnPath('apt-get', env))) return undefined;
  log(`installing ${pkg} from Debian (apt-get install --no-install-recommends ${pkg})`);
  await execFileAsync('apt-get', ['update', '-qq']);
  await execFileAsync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', pkg]);
  const installed = await findOnPath(binary, env);
  return installed ? { path: installed, source: 'built' } : undefined;
}

/** The Debian tools that make and read guest disks (test images; the simulator's content judge), by binary. */
const DISK_TOOLS: Array<[binary: string, pkg: string]> = [
  ['debugfs', 'e2fsprogs'],
  ['sfdisk', 'fdisk'],
  ['mkntfs', 'ntfs-3g'],
  ['hivexget', 'libhivex-bin'],
  ['hivexregedit', 'libwin-hivex-perl'],
];

/** Every disk tool, installed from Debian when missing (as root); returns the binaries still missing. */
export async function resolveDiskTools(opts: ResolveOptions = {}): Promise<string[]> {
  const missing: string[] = [];
  for (const [binary, pkg] of DISK_TOOLS) {
    const found = await resolveDebianTool(binary, pkg, `VMCONVOY_${binary.toUpperCase()}`, opts);
    if (!found) missing.push(binary);
  }
  return missing;
}

// ---------------------------------------------------------------------------------------------------
// The Temporal cluster (dev/cluster.ts): server, schema tool and Web UI, built from source like the CLI
// ---------------------------------------------------------------------------------------------------

/** The server version the pinned CLI (v1.5.1) embeds, so the dev server and the cluster run the same code. */
export const TEMPORAL_SERVER_MODULE = 'go.temporal.io/server/cmd/server@v1.29.1';
export const TEMPORAL_SQL_TOOL_MODULE = 'go.temporal.io/server/cmd/tools/sql@v1.29.1';
/** The UI server version the pinned CLI embeds (its go.mod), with the built UI inside (go:embed). */
export const TEMPORAL_UI_SERVER_MODULE = 'github.com/temporalio/ui-server/v2/cmd/server@v2.42.1';

/**
 * Like resolveGoTool, for packages whose `go install` name says nothing (`server`, `sql`): built into a
 * staging folder of their own, then moved into the cache under `name`.
 */
async function resolveRenamedGoTool(
  name: string,
  envVar: string,
  module: string,
  opts: ResolveOptions
): Promise<ResolvedTool | undefined> {
  const env = opts.env ?? process.env;
  const found = await resolveGoTool(name, envVar, module, { ...opts, build: false });
  if (found || opts.build === false || !(await findOnPath('go', env))) return found;
  const log = opts.log ?? ((line: string) => process.stderr.write(`[vmconvoy] ${line}\n`));
  const stage = path.join(cacheDir(env), 'build', name);
  await goInstall(module, { ...env, VMCONVOY_CACHE_DIR: stage }, log);
  const built = path.join(cacheBinDir({ ...env, VMCONVOY_CACHE_DIR: stage }), path.basename(module.split('@')[0]!));
  const target = path.join(cacheBinDir(env), name);
  await mkdir(cacheBinDir(env), { recursive: true });
  // A rename within one file system: a concurrent resolver sees either no binary or the whole one.
  await execFileAsync('mv', ['-f', built, target]);
  await execFileAsync('rm', ['-rf', stage]);
  return { path: target, source: 'built' };
}

/** `temporal-server` (frontend, history, matching, worker services): `$TEMPORAL_SERVER`, PATH, cache, go install. */
export function resolveTemporalServer(opts: ResolveOptions = {}): Promise<ResolvedTool | undefined> {
  return resolveRenamedGoTool('temporal-server', 'TEMPORAL_SERVER', TEMPORAL_SERVER_MODULE, opts);
}

/** `temporal-sql-tool` (creates and migrates the schemas; they are embedded in it): `$TEMPORAL_SQL_TOOL`, ... */
export function resolveTemporalSqlTool(opts: ResolveOptions = {}): Promise<ResolvedTool | undefined> {
  return resolveRenamedGoTool('temporal-sql-tool', 'TEMPORAL_SQL_TOOL', TEMPORAL_SQL_TOOL_MODULE, opts);
}

/** `temporal-ui-server` (the Web UI as its own process): `$TEMPORAL_UI_SERVER`, PATH, cache, go install. */
export function resolveTemporalUiServer(opts: ResolveOptions = {}): Promise<ResolvedTool | undefined> {
  return resolveRenamedGoTool('temporal-ui-server', 'TEMPORAL_UI_SERVER', TEMPORAL_UI_SERVER_MODULE, opts);
}
