/**
 * The EC2 side of VM import, without HTTP: conversion tasks and the instances and volumes they create,
 * tags, and instance state transitions. Time comes from the injected clock; `advance()` moves every
 * resource to where the clock says it is, so a restarted simulator continues where it stopped.
 */
import type { SimConfig } from '../config';
import { Ec2Error } from './errors';
import { TASK_ID_PATTERN, newInstanceId, newTaskId, newVolumeId } from './ids';
import type { ConversionTask, Instance, InstanceStateName, SimState, Volume } from './types';
import { emptyState } from './types';

/** What ImportInstance/ImportVolume ask for; the rest of a task is the simulator's. */
export type CreateTaskInput = Pick<
  ConversionTask,
  'kind' | 'description' | 'format' | 'bytes' | 'volumeSizeGib' | 'manifestUrl' | 'availabilityZone' | 'launch'
>;

export class Ec2Model {
  constructor(
    readonly state: SimState,
    private readonly now: () => number,
    private readonly config: () => SimConfig,
    /** Called whenever state changed (persistence). */
    private readonly changed: () => void = () => undefined
  ) {}

  /** Forgets every task, instance, volume, tag and call count. */
  reset(): void {
    Object.assign(this.state, emptyState());
    this.changed();
  }

  /** Counts a call of an EC2 action (`/_sim/state` shows the counts). */
  countCall(action: string): void {
    this.state.calls[action] = (this.state.calls[action] ?? 0) + 1;
    this.changed();
  }

  /** Counts a call refused by the action's token bucket. */
  countThrottled(action: string): void {
    const throttled = (this.state.throttled ??= {});
    throttled[action] = (throttled[action] ?? 0) + 1;
    this.changed();
  }

  /** The simulator's clock. */
  time(): number {
    return this.now();
  }

  // -------------------------------------------------------------------------------------------------
  // Conversion tasks
  // -------------------------------------------------------------------------------------------------

  activeConversions(): number {
    return this.state.tasks.filter((t) => t.state === 'active').length;
  }

  createTask(input: CreateTaskInput): ConversionTask {
    if (this.activeConversions() >= this.config().limits.maxActiveConversions) {
      throw new Ec2Error(
        'ResourceLimitExceeded',
        `You have reached the limit of ${this.config().limits.maxActiveConversions} active conversion tasks in this region.`
      );
    }
    const now = this.now();
    const volume: Volume = {
      volumeId: newVolumeId(),
      sizeGib: input.volumeSizeGib,
      availabilityZone: input.availabilityZone,
      state: 'creating',
      createdAt: now,
    };
    this.state.volumes.push(volume);
    let instanceId: string | undefined;
    if (input.kind === 'instance' && input.launch) {
      instanceId = newInstanceId();
      // The instance exists from the start (AWS shows its ID at once), without a root volume until done.
      this.state.instances.push({ instanceId, launch: input.launch, state: 'pending', rootVolumeId: volume.volumeId, launchTime: now });
    }
    const task: ConversionTask = {
      id: newTaskId(input.kind),
      kind: input.kind,
      state: 'active',
      statusMessage: 'Pending',
      createdAt: now,
      expiresAt: now + this.config().limits.expirySeconds * 1000,
      description: input.description,
      format: input.format,
      bytes: input.bytes,
      volumeSizeGib: input.volumeSizeGib,
      manifestUrl: input.manifestUrl,
      availabilityZone: input.availabilityZone,
      instanceId,
      volumeId: volume.volumeId,
      launch: input.launch,
    };
    this.state.tasks.push(task);
    this.changed();
    return task;
  }

  /** Tasks still waiting for their manifest and parts to be readable. */
  pendingTasks(): ConversionTask[] {
    return this.state.tasks.filter((t) => t.state === 'active' && t.readyAt === undefined);
  }

  /** Why a task is still Pending (not shown to EC2 callers, who only see "Pending"; `/_sim/state` shows it). */
  noteWaiting(taskId: string, reason: string): void {
    const task = this.state.tasks.find((t) => t.id === taskId);
    if (!task || task.state !== 'active' || task.readyAt !== undefined || task.pendingReason === reason) return;
    task.pendingReason = reason;
    this.changed();
  }

  /** The manifest and image checked out: conversion starts now. */
  startConversion(taskId: string, failure?: { at: number; message: string }): void {
    const task = this.state.tasks.find((t) => t.id === taskId);
    if (!task || task.state !== 'active' || task.readyAt !== undefined) return;
    const { conversionBytesPerSecond, minConversionSeconds } = this.config().speed;
    task.readyAt = this.now();
    task.pendingReason = undefined;
    task.durationMs = Math.max(minConversionSeconds, task.bytes / conversionBytesPerSecond) * 1000;
    if (failure) {
      task.failAt = failure.at;
      task.failMessage = failure.message;
    }
    task.statusMessage = 'Progress: 0%';
    this.changed();
  }

  /** The manifest or image is unusable: the task ends with that message, as EC2's do. */
  rejectTask(taskId: string, message: string): void {
    const task = this.state.tasks.find((t) => t.id === taskId);
    if (!task || task.state !== 'active') return;
    this.endTask(task, 'cancelled', message);
  }

  describeTasks(ids: string[]): ConversionTask[] {
    this.advance();
    if (ids.length === 0) return this.state.tasks;
    return ids.map((id) => this.findTask(id));
  }

  cancelTask(id: string): void {
    this.advance();
    const task = this.findTask(id);
    if (task.state === 'completed') {
      throw new Ec2Error('DeleteConversionTaskError', `Conversion task ${id} has completed and cannot be cancelled.`);
    }
    if (task.state !== 'active') {
      throw new Ec2Error('DeleteConversionTaskError', `Conversion task ${id} is already ${task.state}.`);
    }
    task.state = 'cancelling';
    task.cancelRequestedAt = this.now();
    task.statusMessage = 'Cancelling';
    this.changed();
  }

  bytesConverted(task: ConversionTask): number {
    if (task.state === 'completed') return task.bytes;
    if (task.readyAt === undefined || !task.durationMs) return 0;
    const fraction = Math.min(1, (Math.min(task.endedAt ?? this.now(), this.now()) - task.readyAt) / task.durationMs);
    const step = this.config().speed.stepSeconds * 1000;
    const stepped = Math.floor((fraction * task.durationMs) / step) * step;
    return Math.floor(task.bytes * Math.min(1, stepped / task.durationMs));
  }

  /**
   * The status message as EC2 shows it now. While converting, "Progress: N%" is derived from bytesConverted
   * at the moment of reading, so the two always agree (the stored one is only as fresh as the last tick).
   */
  statusMessage(task: ConversionTask): string {
    if (task.state !== 'active' || task.readyAt === undefined || !task.statusMessage.startsWith('Progress: ')) return task.statusMessage;
    return `Progress: ${Math.floor((this.bytesConverted(task) / Math.max(1, task.bytes)) * 100)}%`;
  }

  private findTask(id: string): ConversionTask {
    if (!TASK_ID_PATTERN.test(id)) {
      throw new Ec2Error('InvalidConversionTaskId.Malformed', `Invalid id: "${id}" (expecting "import-i-..." or "import-vol-...")`);
    }
    const task = this.state.tasks.find((t) => t.id === id);
    if (!task) throw new Ec2Error('InvalidConversionTaskId', `The conversion task ID '${id}' does not exist`);
    return task;
  }

  private endTask(task: ConversionTask, state: 'cancelled' | 'completed', message: string): void {
    task.state = state;
    task.statusMessage = message;
    task.endedAt = this.now();
    const volume = this.state.volumes.find((v) => v.volumeId === task.volumeId);
    const instance = this.state.instances.find((i) => i.instanceId === task.instanceId);
    if (state === 'completed') {
      if (volume) {
        volume.state = instance ? 'in-use' : 'available';
        if (instance) {
          volume.instanceId = instance.instanceId;
          volume.device = '/dev/sda1';
        }
      }
      if (instance) instance.state = 'stopped';
    } else {
      // A cancelled import leaves nothing behind.
      this.state.volumes = this.state.volumes.filter((v) => v.volumeId !== task.volumeId);
      this.state.instances = this.state.instances.filter((i) => i.instanceId !== task.instanceId);
    }
    this.changed();
  }

  // -------------------------------------------------------------------------------------------------
  // Time
  // -------------------------------------------------------------------------------------------------

  /** Moves every task and instance to the state the clock says it is in. */
  advance(): void {
    const now = this.now();
    for (const task of this.state.tasks) {
      if (task.state === 'cancelling') {
        if (now >= (task.cancelRequestedAt ?? now) + this.config().speed.cancelSeconds * 1000) this.endTask(task, 'cancelled', 'Canceled by user');
        continue;
      }
      if (task.state !== 'active') continue;
      if (task.readyAt === undefined) {
        if (now >= task.expiresAt) this.endTask(task, 'cancelled', 'Task expired and automatically canceled');
        continue;
      }
      const fraction = task.durationMs ? (now - task.readyAt) / task.durationMs : 1;
      if (task.failAt !== undefined && fraction >= task.failAt) {
        this.endTask(task, 'cancelled', task.failMessage ?? 'ClientError: conversion failed');
      } else if (fraction >= 1) {
        this.endTask(task, 'completed', '');
      } else {
        task.statusMessage = this.statusMessage(task);
      }
    }
    for (const instance of this.state.instances) {
      if (instance.target && now >= instance.target.at) {
        instance.state = instance.target.state;
        if (instance.state === 'running') instance.runningSince = instance.target.at;
        instance.target = undefined;
        this.changed();
      }
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Instances, volumes, tags
  // -------------------------------------------------------------------------------------------------

  findInstance(id: string): Instance {
    const instance = this.state.instances.find((i) => i.instanceId === id);
    if (!instance) {
      if (!/^i-[0-9a-f]+$/.test(id)) throw new Ec2Error('InvalidInstanceID.Malformed', `Invalid id: "${id}"`);
      throw new Ec2Error('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    }
    return instance;
  }

  /** Start/stop/terminate: the instance passes through the intermediate state for a moment. */
  transition(ids: string[], action: 'start' | 'stop' | 'terminate'): Array<{ id: string; previous: InstanceStateName; current: InstanceStateName }> {
    this.advance();
    const instances = ids.map((id) => this.findInstance(id));
    const at = this.now() + this.config().speed.instanceTransitionSeconds * 1000;
    return instances.map((instance) => {
      const previous = instance.state;
      if (action === 'start') {
        if (previous === 'pending' && this.state.tasks.some((t) => t.instanceId === instance.instanceId && t.state !== 'completed')) {
          throw new Ec2Error('IncorrectInstanceState', `Instance does not have a volume attached at root (/dev/sda1)`);
        }
        if (previous === 'stopped') {
          instance.state = 'pending';
          instance.target = { state: 'running', at };
        }
      } else if (action === 'stop') {
        if (previous === 'running' || previous === 'pending') {
          instance.state = 'stopping';
          instance.target = { state: 'stopped', at };
        }
      } else if (previous !== 'terminated') {
        instance.state = 'shutting-down';
        instance.target = { state: 'terminated', at };
      }
      this.changed();
      return { id: instance.instanceId, previous, current: instance.state };
    });
  }

  createTags(resourceIds: string[], tags: Record<string, string>): void {
    for (const id of resourceIds) {
      const known = this.state.instances.some((i) => i.instanceId === id) || this.state.volumes.some((v) => v.volumeId === id);
      if (!known) throw new Ec2Error(id.startsWith('vol-') ? 'InvalidVolume.NotFound' : 'InvalidID', `The ID '${id}' is not valid`);
    }
    for (const id of resourceIds) this.state.tags[id] = { ...this.state.tags[id], ...tags };
    this.changed();
  }

  tagsOf(resourceId: string): Record<string, string> {
    return this.state.tags[resourceId] ?? {};
  }
}
