/**
 * Instances, volumes and tags as EC2 lists and changes them: new ones are listed only after their
 * listing delay (EC2's eventual consistency), start/stop/terminate pass through an intermediate state.
 * The conversion side (tasks, time) is Ec2Model's, which extends this.
 */
import type { SimConfig } from '../config';
import { Ec2Error } from './errors';
import type { InstanceAction, StateChange } from './instance-transitions';
import { transitionInstance } from './instance-transitions';
import { seconds } from './timing';
import type { Instance, SimState, Volume } from './types';

export const visible = (r: { visibleAt?: number }, now: number): boolean =>
  r.visibleAt === undefined || now >= r.visibleAt;

export abstract class Ec2Resources {
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

  findVolume(id: string): Volume {
    const volume = this.listVolumes().find((v) => v.volumeId === id);
    if (!volume) throw new Ec2Error('InvalidVolume.NotFound', `The volume '${id}' does not exist.`);
    return volume;
  }

  /** An instance by ID; one not listed yet is unknown to every call, as EC2 documents. */
  findInstance(id: string): Instance {
    const instance = this.listInstances().find((i) => i.instanceId === id);
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
      const known =
        this.listInstances().some((i) => i.instanceId === id) || this.listVolumes().some((v) => v.volumeId === id);
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
