/**
 * What keeps two local environments apart: one per state folder (a lock holding the owner's pid), and
 * the ports each asks for, taken only when free.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { freePort } from './process';

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export async function choosePort(
  preferred: number | undefined,
  label: string,
  log: (l: string) => void
): Promise<number> {
  if (preferred && (await portIsFree(preferred))) return preferred;
  const port = await freePort();
  if (preferred) log(`${label}: port ${preferred} is busy, using ${port} instead`);
  return port;
}

/**
 * One environment per stateDir: two Temporal servers on one SQLite file would corrupt it. The lock file
 * holds the owner's pid; a lock whose process is gone (a crash) is taken over.
 */
const lockedHere = new Set<string>();

export async function lockStateDir(stateDir: string): Promise<() => Promise<void>> {
  const lockFile = path.join(stateDir, 'lock');
  const owner = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
  const inUse = lockedHere.has(stateDir) || (owner && owner !== process.pid && processAlive(owner));
  if (inUse) {
    throw new Error(
      `${stateDir} is in use by another local environment (pid ${owner || process.pid}): stop it first, or use another state folder ` +
        `(if no environment runs there any more, delete ${lockFile})`
    );
  }
  lockedHere.add(stateDir);
  await writeFile(lockFile, `${process.pid}\n`);
  return async () => {
    lockedHere.delete(stateDir);
    await rm(lockFile, { force: true });
  };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
