/**
 * Runs one declared command, the same way for every command: the Temporal connection is opened when the
 * command first asks for it and closed when it ends; the result goes through the printer (text, or --json);
 * a batch the command asks to follow is watched until it ends; then the command's exit code applies.
 */
import type { Client } from '@temporalio/client';
import type { BatchView } from '../batch-view';
import type { CliConnection } from '../connect';
import { connectClient } from '../connect';
import type { Io } from '../output/printer';
import { Printer } from '../output/printer';
import { BATCH_LIVE } from '../output/status';
import type { AnyCommand, Call, Follow } from './command';
import { watchCommand } from './status';

export async function runCommand(spec: AnyCommand, call: Call<object>, env: NodeJS.ProcessEnv, io: Io): Promise<void> {
  const opts = call.opts as { json?: boolean; out?: string };
  const printer = new Printer(io, opts.json === true);
  let connecting: Promise<CliConnection> | undefined;
  const connection = (): Promise<CliConnection> => (connecting ??= connectClient(env));
  const client = async (): Promise<Client> => (await connection()).client;
  try {
    const result = await spec.run(call, { env, printer, connection, client });
    const follow = spec.follow?.(result, call);
    if (result !== undefined && spec.view) {
      // With --json, what follows is one object per line: the result is one line too.
      await printer.print(result, spec.view, call, { oneLine: follow !== undefined, file: opts.out });
    }
    const followed = follow && (await followBatch(await client(), follow, printer));
    const exit = spec.exit?.(result, call, followed);
    if (exit) throw exit;
  } finally {
    // A connection that failed to open has nothing to close (and its error is already on its way up).
    const opened = await connecting?.catch(() => undefined);
    await opened?.close();
  }
}

/** Watches the batch until it ends, printing each change; returns how it ended. */
async function followBatch(client: Client, follow: Follow, printer: Printer): Promise<BatchView> {
  const live = printer.live(BATCH_LIVE);
  const final = await watchCommand(client, follow.batch, { intervalMs: follow.intervalMs, onView: live.show });
  live.end(final);
  return final;
}
