/**
 * A conversion's progress as pure functions of the task, the clock and the speed config: when it starts
 * converting, how far it is, what its status message says, and which queued tasks get a slot.
 */
import type { SimConfig } from '../config';
import { seconds } from './timing';
import type { ConversionTask } from './types';

/** When "Progress: N%" starts: a slot, then the read. Undefined while queued or not ready. */
export function convertingFrom(task: ConversionTask): number | undefined {
  return task.slotAt === undefined ? undefined : task.slotAt + (task.readMs ?? 0);
}

/** How far the conversion is, in whole progress steps (speed.stepSeconds): the basis of both progress fields. */
export function convertedBytes(task: ConversionTask, now: number, speed: SimConfig['speed']): number {
  if (task.state === 'completed') return task.bytes;
  const from = convertingFrom(task);
  if (from === undefined || !task.durationMs) return 0;
  const fraction = Math.min(1, Math.max(0, Math.min(task.endedAt ?? now, now) - from) / task.durationMs);
  const step = seconds(speed, speed.stepSeconds);
  const stepped = Math.floor((fraction * task.durationMs) / step) * step;
  return Math.floor(task.bytes * Math.min(1, stepped / task.durationMs));
}

/** "Pending" until the image has been read, then "Progress: N%"; ended tasks keep their final message. */
export function statusMessageOf(task: ConversionTask, now: number, speed: SimConfig['speed']): string {
  if (task.state !== 'active' || task.readyAt === undefined) return task.statusMessage;
  const from = convertingFrom(task);
  if (from === undefined || now < from) return 'Pending';
  return `Progress: ${Math.floor((convertedBytes(task, now, speed) / Math.max(1, task.bytes)) * 100)}%`;
}

/**
 * Ready tasks take free conversion slots in the order they became ready (`slots` 0 = no limit, a task
 * starts the moment it is ready; from a queue it starts at the tick that finds a slot free). Returns
 * whether any task got one.
 */
export function assignSlots(tasks: ConversionTask[], slots: number, now: number): boolean {
  const queued = tasks
    .filter((t) => t.state === 'active' && t.readyAt !== undefined && t.slotAt === undefined)
    .sort((a, b) => a.readyAt! - b.readyAt!);
  let free =
    slots === 0 ? queued.length : slots - tasks.filter((t) => t.state === 'active' && t.slotAt !== undefined).length;
  let assigned = false;
  for (const task of queued) {
    if (free-- <= 0) break;
    task.slotAt = slots === 0 ? task.readyAt : now;
    assigned = true;
  }
  return assigned;
}
