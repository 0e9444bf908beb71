/**
 * Child processes for the local environment: spawn, wait until ready, stop, and never leave an orphan
 * behind when the parent exits (tests that fail half-way must not leave servers holding ports).
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import net from 'node:net';

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

/** A free TCP port on loopback, chosen by the kernel. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on host:port, or rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ port, host });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on ${host}:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface ServiceProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Lines the process printed so far (stdout and stderr), kept for error messages. */
  readonly output: string[];
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL at once, as a crash would. */
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

export interface SpawnServiceOptions {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Also append the output to this file. */
  logFile?: string;
  /** Called on every output line; return true once the service is ready. */
  readyWhen?: (line: string) => boolean;
  /** Or: ready once this port accepts connections. */
  readyPort?: number;
  readyTimeoutMs?: number;
}

export async function spawnService(opts: SpawnServiceOptions): Promise<ServiceProcess> {
  installExitHook();
  const child = spawn(opts.command, opts.args, {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const output: string[] = [];
  const log = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      live.delete(child);
      log?.end();
      resolve(code);
    });
  });
  let readyResolve: (() => void) | undefined;
  const readyByLine = new Promise<void>((resolve) => (readyResolve = resolve));
  const onData = (chunk: Buffer): void => {
    log?.write(chunk);
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      output.push(line);
      if (output.length > 200) output.shift();
      if (opts.readyWhen?.(line)) readyResolve?.();
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);

  const stop = async (graceMs = 5000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  const kill = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exited;
  };
  const service: ServiceProcess = { name: opts.name, child, output, stop, kill, exited };

  const timeoutMs = opts.readyTimeoutMs ?? 30_000;
  const ready = opts.readyPort !== undefined ? waitForPort(opts.readyPort, timeoutMs) : readyByLine;
  let timer: NodeJS.Timeout | undefined;
  const failure = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${opts.name} was not ready within ${timeoutMs} ms`)), timeoutMs);
    void exited.then((code) => reject(new Error(`${opts.name} exited with code ${code} before it was ready`)));
  });
  try {
    await Promise.race([ready, failure]);
  } catch (err) {
    await kill();
    const tail = output.slice(-20).join('\n');
    throw new Error(`${(err as Error).message}\n--- last output of ${opts.name} ---\n${tail}`);
  } finally {
    clearTimeout(timer);
  }
  return service;
}
