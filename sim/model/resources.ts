/**
 * Instances, volumes and tags as EC2 lists and changes them: new ones are listed only after their
 * listing delay (EC2's eventual consistency), start/stop/terminate pass through an intermediate state.
 * The conversion side (tasks, time) is Ec2Model's, which extends this.
 */
import type { SimConfig } from '../config';
import { Ec2Error } from './errors';
import { IdIndex } from './id-index';
import type { InstanceAction, StateChange } from './instance-transitions';
import { transitionInstance } from './instance-transitions';
import { seconds } from './timing';
import type { Instance, SimState, Volume } from './types';

/**
 * Device names EC2 takes for an EBS volume on a Linux or Windows instance (`/dev/sd[b-z]`, `xvd[b-z]`, with or
 * without `/dev/`); the EC2 user guide recommends /dev/sd[f-p] for EBS ("Device names for volumes").
 */
const DEVICE_NAME = /^(\/dev\/)?(sd|xvd)[b-z]$/;

export const visible = (r: { visibleAt?: number }, now: number): boolean =>
  r.visibleAt === undefined || now >= r.visibleAt;

export abstract class Ec2Resources {
  private readonly instanceIndex = new IdIndex<Instance>((i) => i.instanceId);
  private readonly volumeIndex = new IdIndex<Volume>((v) => v.volumeId);

  constructor(
    readonly state: SimState,
    protected readonly now: () => number,
    protected readonly config: () => SimConfig,
    /** Called whenever state changed (persistence). */
    protected readonly changed: () => void = () => undefined
  ) {}

  /** Moves every resource to the state the clock says it is in. */
  abstract advance(): void;

  /** Instances EC2 lists now (new ones only after their listing delay). */
  listInstances(): Instance[] {
    return this.state.instances.filter((i) => visible(i, this.now()));
  }

  /** The simulator's record of an instance, listed yet or not (`findInstance` is what EC2 callers see). */
  instanceRecord(id: string | undefined): Instance | undefined {
    return id === undefined ? undefined : this.instanceIndex.get(this.state.instances, id);
  }

  /** The simulator's record of a volume, deleted or listed yet or not (`findVolume` is what EC2 callers see). */
  volumeRecord(id: string | undefined): Volume | undefined {
    return id === undefined ? undefined : this.volumeIndex.get(this.state.volumes, id);
  }

  /** A volume EC2 lists now, by ID. */
  private listedVolume(id: string): Volume | undefined {
    const volume = this.volumeRecord(id);
    return volume && volume.state !== 'deleted' && visible(volume, this.now()) ? volume : undefined;
  }

  /** An instance EC2 lists now, by ID. */
  private listedInstance(id: string): Instance | undefined {
    const instance = this.instanceRecord(id);
    return instance && visible(instance, this.now()) ? instance : undefined;
  }

  /** Volumes EC2 lists now (a deleted one no more: `/_sim/state` still shows it, as `deleted`). */
  listVolumes(): Volume[] {
    return this.state.volumes.filter((v) => v.state !== 'deleted' && visible(v, this.now()));
  }

  /** DeleteVolume: only a volume that is `available` (not attached) may go. */
  deleteVolume(id: string): void {
    this.advance();
    const volume = this.findVolume(id);
    if (volume.state === 'in-use')
      throw new Ec2Error('VolumeInUse', `Volume ${id} is currently attached to ${volume.instanceId ?? 'an instance'}`);
    volume.state = 'deleted';
    this.changed();
  }

  /**
   * AttachVolume: an `available` volume in the instance's zone goes to a `running` or `stopped` instance at a
   * device no other volume of that instance holds. The volume is `in-use` at once; its attachment reads
   * `attaching` for `instanceTransitionSeconds`, then `attached`.
   */
  attachVolume(volumeId: string, instanceId: string, device: string): Volume {
    this.advance();
    const volume = this.findVolume(volumeId);
    const instance = this.findInstance(instanceId);
    if (!DEVICE_NAME.test(device))
      throw new Ec2Error(
        'InvalidParameterValue',
        `Invalid value '${device}' for unixDevice. Use /dev/sd[f-p] or xvd[f-p].`
      );
    if (volume.state === 'in-use') throw new Ec2Error('VolumeInUse', `${volumeId} is already attached to an instance`);
    if (volume.state !== 'available') throw new Ec2Error('IncorrectState', `${volumeId} is not 'available'.`);
    if (instance.state !== 'running' && instance.state !== 'stopped')
      throw new Ec2Error(
        'IncorrectInstanceState',
        `The instance '${instanceId}' is not in the 'running' or 'stopped' state.`
      );
    if (volume.availabilityZone !== instance.launch.availabilityZone)
      throw new Ec2Error(
        'InvalidVolume.ZoneMismatch',
        `The volume '${volumeId}' is not in the same availability zone as instance '${instanceId}'`
      );
    const bare = device.replace(/^\/dev\//, '');
    const taken = this.state.volumes.some(
      (v) => v.instanceId === instanceId && v.state === 'in-use' && v.device?.replace(/^\/dev\//, '') === bare
    );
    if (taken || bare === 'sda1')
      throw new Ec2Error('InvalidParameterValue', `Attachment point ${device} is already in use`);
    const now = this.now();
    volume.state = 'in-use';
    volume.instanceId = instanceId;
    volume.device = device;
    volume.attachTime = now;
    volume.attachedAt = now + seconds(this.config().speed, this.config().speed.instanceTransitionSeconds);
    this.changed();
    return volume;
  }

  /** `attaching` for a moment after AttachVolume, then `attached`. */
  attachmentStatus(volume: Volume): 'attaching' | 'attached' {
    return volume.attachedAt !== undefined && this.now() < volume.attachedAt ? 'attaching' : 'attached';
  }

  /** Every volume attached to an instance, the root first. */
  volumesOf(instance: Instance): Volume[] {
    const attached = this.state.volumes.filter((v) => v.instanceId === instance.instanceId && v.state === 'in-use');
    return attached.sort((a, b) =>
      a.volumeId === instance.rootVolumeId ? -1 : b.volumeId === instance.rootVolumeId ? 1 : 0
    );
  }

  findVolume(id: string): Volume {
    const volume = this.listedVolume(id);
    if (!volume) throw new Ec2Error('InvalidVolume.NotFound', `The volume '${id}' does not exist.`);
    return volume;
  }

  /** An instance by ID; one not listed yet is unknown to every call, as EC2 documents. */
  findInstance(id: string): Instance {
    const instance = this.listedInstance(id);
    if (!instance) {
      if (!/^i-[0-9a-f]+$/.test(id)) throw new Ec2Error('InvalidInstanceID.Malformed', `Invalid id: "${id}"`);
      throw new Ec2Error('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    }
    return instance;
  }

  /** Start/stop/terminate: the instance passes through the intermediate state for a moment. */
  transition(ids: string[], action: InstanceAction): StateChange[] {
    this.advance();
    const instances = ids.map((id) => this.findInstance(id));
    const at = this.now() + seconds(this.config().speed, this.config().speed.instanceTransitionSeconds);
    const changes = instances.map((instance) => transitionInstance(instance, action, at, this.state.tasks));
    // LaunchTime is "the time that the instance was last launched" (EC2 API reference, Instance): a start resets it.
    for (const c of changes) {
      if (action === 'start' && c.previous === 'stopped') {
        const instance = instances.find((i) => i.instanceId === c.id);
        if (instance) instance.launchTime = this.now();
      }
    }
    this.changed();
    return changes;
  }

  createTags(resourceIds: string[], tags: Record<string, string>): void {
    for (const id of resourceIds) {
      const known = this.listedInstance(id) !== undefined || this.listedVolume(id) !== undefined;
      if (!known)
        throw new Ec2Error(
          id.startsWith('vol-') ? 'InvalidVolume.NotFound' : 'InvalidID',
          `The ID '${id}' is not valid`
        );
    }
    for (const id of resourceIds) this.state.tags[id] = { ...this.state.tags[id], ...tags };
    this.changed();
  }

  tagsOf(resourceId: string): Record<string, string> {
    return this.state.tags[resourceId] ?? {};
  }
}
