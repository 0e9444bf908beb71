/**
 * The stream-optimized VMDK of a disk as an async sequence of records (the writer fed by the grain source),
 * and, for tests and benchmarks, the same written to a file.
 */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { grainsWithData } from './grain-source';
import type { DataRange } from './data-map';
import { rawDataRanges } from './data-map';
import type { StreamCheckpoint, StreamLayout, StreamRecord } from './stream-vmdk';
import { StreamVmdkWriter } from './stream-vmdk';

export function streamVmdk(
  handle: FileHandle,
  layout: StreamLayout,
  from?: StreamCheckpoint,
  offset = 0,
  dataRanges?: readonly DataRange[]
): { writer: StreamVmdkWriter; records: AsyncGenerator<StreamRecord> } {
  const writer = new StreamVmdkWriter(layout, from);
  const source = grainsWithData({
    handle,
    offset,
    virtualBytes: layout.virtualBytes,
    fromGrain: writer.nextGrain,
    dataRanges,
    onShortRead: () => {
      throw new Error('the disk image became shorter while it was read');
    },
  });
  return { writer, records: writer.records(source) };
}

/** Writes the stream-optimized VMDK of the first `virtualBytes` of `source` to `target`; returns its length. */
export async function writeStreamVmdk(
  source: string,
  target: string,
  layout: StreamLayout,
  /** Skip the holes qemu-img finds (data-map.ts); absent: read the whole disk. */
  qemuImg?: string
): Promise<number> {
  const ranges = qemuImg ? await rawDataRanges(qemuImg, source, 0, layout.virtualBytes) : undefined;
  const input = await open(source, 'r');
  const output = await open(target, 'w');
  try {
    const { writer, records } = streamVmdk(input, layout, undefined, 0, ranges);
    for await (const r of records) await output.write(r.bytes, 0, r.bytes.length, r.start);
    return writer.bytesWritten;
  } finally {
    await input.close();
    await output.close();
  }
}
