/**
 * Recorded workflow histories: integration tests save the histories of the runs they make when
 * VMCONVOY_RECORD_HISTORIES=1, and test/unit/replay.test.ts replays every saved one against the current
 * workflow code, so a change that breaks running workflows (non-determinism) fails `npm test`.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const HISTORY_FIXTURES = path.join(__dirname, '..', 'fixtures', 'histories');

export async function recordHistory(handle: WorkflowHandle, name: string): Promise<void> {
  if (process.env.VMCONVOY_RECORD_HISTORIES !== '1') return;
  const history = await handle.fetchHistory();
  await mkdir(HISTORY_FIXTURES, { recursive: true });
  // Plain JSON through the proto module's own converters (enums and longs as strings, bytes as base64).
  // The SDK's historyToJSON trips over two protobufjs copies in this tree ("type must be a Type").
  const History = temporal.api.history.v1.History;
  const json = History.toObject(History.fromObject(history), { enums: String, longs: String, bytes: String });
  await writeFile(path.join(HISTORY_FIXTURES, `${name}.json`), JSON.stringify(json));
}

/** Reads a fixture written by recordHistory. */
export function historyFromFixture(json: unknown): temporal.api.history.v1.History {
  return temporal.api.history.v1.History.fromObject(json as Record<string, unknown>);
}
