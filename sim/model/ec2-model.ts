/**
 * The EC2 side of VM import, without HTTP: conversion tasks and the instances and volumes they create,
 * tags, and instance state transitions. Time comes from the injected clock; `advance()` moves every
 * resource to where the clock says it is, so a restarted simulator continues where it stopped.
 *
 * A task's life: created (Pending) → upload read and judged (`readyAt`) → a conversion slot (`slotAt`,
 * queued while the account's slots are busy) → EC2 reads the image (`readMs`, still Pending) →
 * "Progress: N%" for `durationMs` → completed (or cancelled with the judge's message at `failAt`).
 * New tasks, instances and volumes are listed only from `visibleAt` on (EC2's eventual consistency).
 */
import type { SimConfig } from '../config';
import { seededRandom } from '../faults/fault-injector';
import { Ec2Error } from './errors';
import { TASK_ID_PATTERN, newInstanceId, newTaskId, newVolumeId } from './ids';
import { assignSlots, convertedBytes, convertingFrom, statusMessageOf } from './progress';
import { conversionMs, listingDelayMs, readMs, seconds } from './timing';
import { visible } from './resources';
import { OwnedTasks } from './task-owners';
import type { NetworkState } from './network-state';
import type { ConversionTask, Instance, SimState, Volume } from './types';
import { emptyState } from './types';

/** What reading and judging the upload decided; `platform` is the OS the judge found, when it looked. */
export interface ConversionOutcome {
  failure?: { at: number; message: string };
  platform?: 'windows' | 'linux';
  judged?: string;
}

/** What ImportInstance/ImportVolume ask for; the rest of a task is the simulator's. */
export type CreateTaskInput = Pick<
  ConversionTask,
  'kind' | 'description' | 'format' | 'bytes' | 'volumeSizeGib' | 'manifestUrl' | 'availabilityZone' | 'launch'
>;

export class Ec2Model extends OwnedTasks {
  /** Draws durations and listing delays; seeded (faults.seed) so a run can be repeated. */
  private random: () => number;

  constructor(
    state: SimState,
    now: () => number,
    config: () => SimConfig,
    /** Called whenever state changed (persistence). */
    changed: () => void = () => undefined
  ) {
    super(state, now, config, changed);
    this.random = seededRandom(config().faults.seed ^ 0x5eed);
  }

  /** Forgets every task, instance, volume, tag and call count; the random sequence starts again. */
  reset(): void {
    Object.assign(this.state, emptyState());
    delete this.state.network; // a seeded network goes too: the default one is back
    this.random = seededRandom(this.config().faults.seed ^ 0x5eed);
    this.changed();
  }

  /** Counts a call of an EC2 action (`/_sim/state` shows the counts). */
  countCall(action: string): void {
    this.state.calls[action] = (this.state.calls[action] ?? 0) + 1;
    this.changed();
  }

  /** Replaces the seeded network (`POST /_sim/network`). */
  setNetwork(network: NetworkState): void {
    this.state.network = network;
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
    return this.state.tasks.filter((t) => t.state === 'active' && this.mine(t)).length;
  }

  createTask(input: CreateTaskInput): ConversionTask {
    if (this.activeConversions() >= this.config().limits.maxActiveConversions) {
      throw new Ec2Error(
        'ResourceLimitExceeded',
        `You have reached the limit of ${this.config().limits.maxActiveConversions} active conversion tasks in this region.`
      );
    }
    const now = this.now();
    // Each resource propagates on its own: a task may be listed before its instance, or after.
    const listedFrom = (): number | undefined => {
      const delay = listingDelayMs(this.config(), this.random);
      return delay > 0 ? now + delay : undefined;
    };
    const volume: Volume = {
      volumeId: newVolumeId(),
      sizeGib: input.volumeSizeGib,
      availabilityZone: input.availabilityZone,
      state: 'creating',
      createdAt: now,
      visibleAt: listedFrom(),
    };
    this.state.volumes.push(volume);
    let instanceId: string | undefined;
    if (input.kind === 'instance' && input.launch) {
      instanceId = newInstanceId();
      // The instance exists from the start (AWS shows its ID at once), without a root volume until done.
      const instance: Instance = {
        instanceId,
        launch: input.launch,
        state: 'pending',
        rootVolumeId: volume.volumeId,
        launchTime: now,
        visibleAt: listedFrom(),
      };
      this.state.instances.push(instance);
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
      visibleAt: listedFrom(),
      ...(this.caller ? { owner: { ...this.caller } } : {}),
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
    const task = this.taskRecord(taskId);
    if (!task || task.state !== 'active' || task.readyAt !== undefined || task.pendingReason === reason) return;
    task.pendingReason = reason;
    this.changed();
  }

  /**
   * The manifest and image checked out (or the judge found why the conversion will fail): the task queues
   * for a conversion slot, then EC2 reads and converts it. Durations are drawn now.
   */
  startConversion(taskId: string, outcome: ConversionOutcome = {}): void {
    const task = this.taskRecord(taskId);
    if (!task || task.state !== 'active' || task.readyAt !== undefined) return;
    const { speed } = this.config();
    task.readyAt = this.now();
    task.pendingReason = undefined;
    task.readMs = readMs(task.bytes, speed);
    task.durationMs = conversionMs(task.bytes, speed, this.random);
    if (outcome.failure) {
      task.failAt = outcome.failure.at;
      task.failMessage = outcome.failure.message;
    }
    task.judged = outcome.judged;
    // The instance's platform is what EC2 found on the disk, not what the request said.
    const instance = this.instanceRecord(task.instanceId);
    if (outcome.platform && instance) {
      instance.launch.platform = outcome.platform === 'windows' ? 'windows' : undefined;
      if (task.launch) task.launch.platform = instance.launch.platform;
    }
    this.assignSlots();
    task.statusMessage = this.statusMessage(task);
    this.changed();
  }

  /**
   * Queued tasks take the slots that are free now. Runs on every call that reads tasks, so its work follows
   * the active tasks, not every task the simulator has ever held (it copied each owner's list per task, and
   * a 10,000-task simulator spent about 135 ms in each call: bench/README "scale").
   */
  private assignSlots(): void {
    // Each account+Region converts in its own slots; only active tasks hold or wait for one.
    const byOwner = new Map<string, ConversionTask[]>();
    for (const t of this.state.tasks) {
      if (t.state !== 'active') continue;
      const key = this.ownerKey(t.owner);
      const tasks = byOwner.get(key);
      if (tasks) tasks.push(t);
      else byOwner.set(key, [t]);
    }
    let assigned = false;
    for (const tasks of byOwner.values())
      assigned = assignSlots(tasks, this.config().speed.conversionSlots, this.now()) || assigned;
    if (assigned) this.changed();
  }

  /** The manifest or image is unusable: the task ends with that message, as EC2's do. */
  rejectTask(taskId: string, message: string): void {
    const task = this.taskRecord(taskId);
    if (!task || task.state !== 'active') return;
    this.endTask(task, 'cancelled', message);
  }

  /** The tasks EC2 lists now: by ID (one not listed yet is unknown), or all that are listed. */
  describeTasks(ids: string[]): ConversionTask[] {
    this.advance();
    if (ids.length === 0) return this.state.tasks.filter((t) => visible(t, this.now()) && this.mine(t));
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

  /**
   * BytesConverted as EC2 reports it at `at`: with speed.bytesConverted `zero-until-done`, 0 beside
   * "Progress: N%". One answer passes the same `at` here and to statusMessage so the two fields agree.
   */
  bytesConverted(task: ConversionTask, at = this.now()): number {
    const { speed } = this.config();
    if (speed.bytesConverted === 'zero-until-done' && task.state !== 'completed') return 0;
    return convertedBytes(task, at, speed);
  }

  /** The status message as EC2 shows it at `at` ("Pending", "Progress: N%", or how the task ended). */
  statusMessage(task: ConversionTask, at = this.now()): string {
    return statusMessageOf(task, at, this.config().speed);
  }

  private findTask(id: string): ConversionTask {
    if (!TASK_ID_PATTERN.test(id)) {
      throw new Ec2Error(
        'InvalidConversionTaskId.Malformed',
        `Invalid id: "${id}" (expecting "import-i-..." or "import-vol-...")`
      );
    }
    const task = this.taskRecord(id);
    // Not listed yet reads exactly like not there: EC2's eventual consistency. Another account's is not there.
    if (!task || !visible(task, this.now()) || !this.mine(task))
      throw new Ec2Error('InvalidConversionTaskId', `The conversion task ID '${id}' does not exist`);
    return task;
  }

  private endTask(task: ConversionTask, state: 'cancelled' | 'completed', message: string): void {
    task.state = state;
    task.statusMessage = message;
    task.endedAt = this.now();
    const volume = this.volumeRecord(task.volumeId);
    const instance = this.instanceRecord(task.instanceId);
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

  /**
   * A terminated instance's volumes stay, detached and `available`: the root volume of an imported instance
   * is not deleted on termination (DescribeInstances shows deleteOnTermination false).
   */
  private detachVolumesOf(instanceId: string): void {
    for (const volume of this.state.volumes) {
      if (volume.instanceId !== instanceId || volume.state !== 'in-use') continue;
      volume.state = 'available';
      volume.instanceId = undefined;
      volume.device = undefined;
      volume.attachTime = undefined;
      volume.attachedAt = undefined;
    }
  }

  /** Moves every task and instance to the state the clock says it is in. */
  override advance(): void {
    const now = this.now();
    for (const task of this.state.tasks) {
      if (task.state === 'cancelling') {
        if (now >= (task.cancelRequestedAt ?? now) + seconds(this.config().speed, this.config().speed.cancelSeconds))
          this.endTask(task, 'cancelled', 'Canceled by user');
        continue;
      }
      if (task.state !== 'active') continue;
      if (task.readyAt === undefined) {
        if (now >= task.expiresAt) this.endTask(task, 'cancelled', 'Task expired and automatically canceled');
        continue;
      }
      const from = convertingFrom(task);
      if (from === undefined || now < from) continue; // queued for a slot, or EC2 still reading the image
      const fraction = task.durationMs ? (now - from) / task.durationMs : 1;
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
        if (instance.state === 'terminated') this.detachVolumesOf(instance.instanceId);
        instance.target = undefined;
        this.changed();
      }
    }
    // Slots freed above go to queued tasks at this tick.
    this.assignSlots();
  }
}
