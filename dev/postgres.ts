/**
 * A scratch PostgreSQL for the local Temporal cluster (dev/cluster.ts): Debian's PostgreSQL binaries,
 * a data folder of its own, TCP on loopback only, password authentication. PostgreSQL refuses to run
 * as root, so when this process is root the server runs as the unprivileged system user `vmconvoy-pg`
 * (created on first use), switched to with util-linux `setpriv`, which execs in place: the pid we hold
 * is the postmaster's, so stopping or killing it reaches the server itself, not a wrapper.
 */
import { execFile } from 'node:child_process';
import { access, chmod, chown, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ServiceProcess } from './process';
import { freePort, spawnService } from './process';
import { findOnPath } from './tools';

const execFileAsync = promisify(execFile);

/** The system user PostgreSQL runs as when vmconvoy's tooling runs as root. */
export const PG_SYSTEM_USER = 'vmconvoy-pg';

export interface PostgresOptions {
  /** Holds `data/` (the cluster) and `postgres.log`. Created when missing. */
  dir: string;
  port?: number;
  /** Superuser created by initdb (Temporal connects as this user). @default temporal */
  user?: string;
  /** @default temporal */
  password?: string;
  /** @default 200: four Temporal services with their pools, the schema tool and psql sessions. */
  maxConnections?: number;
}

export interface Postgres {
  host: string;
  port: number;
  user: string;
  password: string;
  dataDir: string;
  /** The postmaster as it runs now (it changes on restart). */
  process: ServiceProcess;
  /** Fast shutdown (SIGINT: sessions are cut, a checkpoint is written), then start again on the same port. */
  restart(): Promise<void>;
  /** Starts the server again after `kill()` or `stop()`; a no-op while it runs. */
  start(): Promise<void>;
  /** Immediate shutdown (SIGQUIT): no checkpoint, crash recovery on the next start, as after a crash. */
  kill(): Promise<void>;
  /** Fast shutdown. */
  stop(): Promise<void>;
}

/** initdb and postgres: PATH first (Debian links them into /usr/local/bin here), then Debian's versioned folder. */
export async function resolvePostgresBinaries(): Promise<{ initdb: string; postgres: string }> {
  const initdb = await findOnPath('initdb');
  const postgres = await findOnPath('postgres');
  if (initdb && postgres) return { initdb, postgres };
  const root = '/usr/lib/postgresql';
  const versions = (await readdir(root).catch(() => [] as string[])).sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = path.join(root, version, 'bin');
    try {
      await access(path.join(bin, 'postgres'));
      return { initdb: path.join(bin, 'initdb'), postgres: path.join(bin, 'postgres') };
    } catch {
      // try the next version
    }
  }
  throw new Error(
    'PostgreSQL is not installed: run `apt-get install postgresql` (Debian) or put initdb/postgres on PATH'
  );
}

interface RunAs {
  uid: number;
  gid: number;
}

/** The identity the server runs under: ourselves, or (as root) the system user, created when missing. */
async function serverIdentity(): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = async (): Promise<RunAs | undefined> => {
    try {
      const uid = Number((await execFileAsync('id', ['-u', PG_SYSTEM_USER])).stdout.trim());
      const gid = Number((await execFileAsync('id', ['-g', PG_SYSTEM_USER])).stdout.trim());
      return { uid, gid };
    } catch {
      return undefined;
    }
  };
  const found = await lookup();
  if (found) return found;
  await execFileAsync('useradd', [
    '--system',
    '--user-group',
    '--no-create-home',
    '--home-dir',
    '/nonexistent',
    '--shell',
    '/usr/sbin/nologin',
    PG_SYSTEM_USER,
  ]).catch((err: Error) => {
    // Another process may have created it meanwhile.
    if (!/already exists/.test(err.message)) throw err;
  });
  const created = await lookup();
  if (!created) throw new Error(`could not create the system user ${PG_SYSTEM_USER}`);
  return created;
}

/** Prefix that runs a command as `as` (setpriv execs in place, so the pid is the command's). */
function asUser(as: RunAs | undefined, command: string, args: string[]): { command: string; args: string[] } {
  if (!as) return { command, args };
  return {
    command: 'setpriv',
    args: [`--reuid=${as.uid}`, `--regid=${as.gid}`, '--clear-groups', '--', command, ...args],
  };
}

async function initCluster(
  bins: { initdb: string },
  as: RunAs | undefined,
  dir: string,
  dataDir: string,
  user: string,
  password: string
): Promise<void> {
  const pwFile = path.join(dir, '.initdb-password');
  await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
  if (as) await chown(pwFile, as.uid, as.gid);
  const { command, args } = asUser(as, bins.initdb, [
    '-D',
    dataDir,
    '-U',
    user,
    `--pwfile=${pwFile}`,
    // Password checks on TCP (what Temporal uses); the socket is switched off at start anyway.
    '--auth-host=scram-sha-256',
    '--auth-local=scram-sha-256',
    '-E',
    'UTF8',
    '--locale=C',
  ]);
  try {
    await execFileAsync(command, args, { env: { ...process.env, LC_ALL: 'C' } });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`initdb failed: ${e.stderr ?? e.message}`);
  } finally {
    await rm(pwFile, { force: true });
  }
}

/** The server must reach its data folder through every parent: fail early with a readable reason. */
async function checkReachable(as: RunAs | undefined, dir: string): Promise<void> {
  if (!as) return;
  // Our own folder: let the server user through (and only through: no listing for others).
  const mode = (await stat(dir)).mode & 0o777;
  if ((mode & 0o001) === 0) await chmod(dir, mode | 0o001);
  const { command, args } = asUser(as, 'test', ['-x', dir]);
  try {
    await execFileAsync(command, args);
  } catch {
    throw new Error(
      `${dir} is not reachable by the user ${PG_SYSTEM_USER} (a parent folder is closed to others): put the cluster's folder elsewhere, e.g. under /tmp`
    );
  }
}

export async function startPostgres(opts: PostgresOptions): Promise<Postgres> {
  const bins = await resolvePostgresBinaries();
  const as = await serverIdentity();
  const dir = path.resolve(opts.dir);
  const dataDir = path.join(dir, 'data');
  const user = opts.user ?? 'temporal';
  const password = opts.password ?? 'temporal';
  const port = opts.port ?? (await freePort());
  await mkdir(dir, { recursive: true });
  await checkReachable(as, dir);
  const fresh = await access(path.join(dataDir, 'PG_VERSION')).then(
    () => false,
    () => true
  );
  if (fresh) {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    if (as) await chown(dataDir, as.uid, as.gid);
    await initCluster(bins, as, dir, dataDir, user, password);
  }
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    port: String(port),
    // No Unix socket: its default folder (/var/run/postgresql) belongs to Debian's own clusters.
    unix_socket_directories: '',
    max_connections: String(opts.maxConnections ?? 200),
    // Log to stderr (captured into postgres.log by spawnService), not to files inside the data folder.
    logging_collector: 'off',
  };
  const launch = (): Promise<ServiceProcess> => {
    const { command, args } = asUser(as, bins.postgres, [
      '-D',
      dataDir,
      ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    ]);
    return spawnService({
      name: 'postgres',
      command,
      args,
      env: { ...process.env, LC_ALL: 'C' },
      logFile: path.join(dir, 'postgres.log'),
      // Not the open port: during crash recovery the server listens but refuses sessions.
      readyWhen: (line) => line.includes('database system is ready to accept connections'),
      readyTimeoutMs: 60_000,
    });
  };
  const signalAndWait = async (signal: NodeJS.Signals): Promise<void> => {
    const child = pg.process.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    // Fast shutdown takes a checkpoint; give it time before the harder signals.
    const escalate = setTimeout(() => child.kill('SIGQUIT'), 30_000);
    const last = setTimeout(() => child.kill('SIGKILL'), 45_000);
    await pg.process.exited;
    clearTimeout(escalate);
    clearTimeout(last);
  };
  const running = (): boolean => pg.process.child.exitCode === null && pg.process.child.signalCode === null;
  const pg: Postgres = {
    host: '127.0.0.1',
    port,
    user,
    password,
    dataDir,
    process: await launch(),
    stop: () => signalAndWait('SIGINT'),
    kill: () => signalAndWait('SIGQUIT'),
    start: async () => {
      if (running()) return;
      pg.process = await launch();
    },
    restart: async () => {
      await signalAndWait('SIGINT');
      pg.process = await launch();
    },
  };
  return pg;
}
