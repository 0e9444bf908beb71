/**
 * What post-import validation needs: DescribeInstances, DescribeVolumes, CreateTags, DescribeTags,
 * Start/Stop/TerminateInstances and DescribeInstanceStatus, with `InstanceId.N` and the common filters; and
 * DeleteVolume, which a rollback sends once the instance is terminated.
 */
import { Ec2Error } from '../../model/errors';
import type { Instance, InstanceStateName, Volume } from '../../model/types';
import { compact, items } from '../xml';
import type { ActionContext, ActionHandler } from './context';
import { dryRunGate } from './context';
import { tagItems } from './conversion-tasks';
import { groupsOf, privateDnsNameOf, privateIpOf, subnetIdOf, vpcIdOf } from './network';

const STATE_CODES: Record<InstanceStateName, number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

/** Does a resource pass every filter? Values within one filter are ORed, filters are ANDed. */
export function passes(filters: Map<string, string[]>, fields: (name: string) => string[] | undefined): boolean {
  for (const [name, wanted] of filters) {
    const have = fields(name);
    if (have === undefined) continue; // filters the simulator does not model are ignored, not errors
    if (!have.some((v) => wanted.includes(v))) return false;
  }
  return true;
}

function instanceFields(ctx: ActionContext, i: Instance): (name: string) => string[] | undefined {
  return (name) => {
    if (name.startsWith('tag:')) return [ctx.model.tagsOf(i.instanceId)[name.slice(4)] ?? ''];
    if (name === 'tag-key') return Object.keys(ctx.model.tagsOf(i.instanceId));
    const map: Record<string, string[]> = {
      'instance-id': [i.instanceId],
      'instance-state-name': [i.state],
      'instance-type': [i.launch.instanceType],
      architecture: [i.launch.architecture],
      'availability-zone': [i.launch.availabilityZone],
      'subnet-id': [subnetIdOf(i)],
      'vpc-id': [vpcIdOf(i, ctx.region)],
      'block-device-mapping.volume-id': [i.rootVolumeId],
    };
    return map[name];
  };
}

function selectInstances(ctx: ActionContext): Instance[] {
  ctx.model.advance();
  const ids = ctx.params.list('InstanceId');
  const chosen = ids.length > 0 ? ids.map((id) => ctx.model.findInstance(id)) : ctx.model.listInstances();
  const filters = ctx.params.filters();
  return chosen.filter((i) => passes(filters, instanceFields(ctx, i)));
}

function rootVolumeAttached(ctx: ActionContext, i: Instance): Volume | undefined {
  const volume = ctx.model.state.volumes.find((v) => v.volumeId === i.rootVolumeId);
  return volume?.state === 'in-use' ? volume : undefined;
}

function renderInstance(ctx: ActionContext, i: Instance): Record<string, unknown> {
  const volume = rootVolumeAttached(ctx, i);
  return compact({
    instanceId: i.instanceId,
    // The AMI EC2 registered for the import: the simulator derives its ID from the instance's.
    imageId: `ami-${i.instanceId.slice(2)}`,
    instanceState: { code: STATE_CODES[i.state], name: i.state },
    privateDnsName: privateDnsNameOf(i, ctx.region),
    // EC2 leaves dnsName empty unless the instance is running with a public address (never, here).
    dnsName: '',
    reason: '',
    amiLaunchIndex: 0,
    productCodes: '',
    instanceType: i.launch.instanceType,
    launchTime: new Date(i.launchTime).toISOString(),
    placement: { availabilityZone: i.launch.availabilityZone, groupName: '', tenancy: 'default' },
    // EC2 writes `windows` here for Windows instances (API reference, Instance: "This value is windows for
    // Windows instances; otherwise blank"), although the model's enum spells it Windows.
    platform: i.launch.platform,
    monitoring: { state: i.launch.monitoring ? 'enabled' : 'disabled' },
    subnetId: subnetIdOf(i),
    vpcId: vpcIdOf(i, ctx.region),
    privateIpAddress: privateIpOf(i),
    sourceDestCheck: true,
    groupSet: items(groupsOf(i, ctx.region)),
    architecture: i.launch.architecture,
    rootDeviceType: 'ebs',
    rootDeviceName: '/dev/sda1',
    blockDeviceMapping: items(
      volume
        ? [
            {
              deviceName: '/dev/sda1',
              ebs: {
                volumeId: volume.volumeId,
                status: 'attached',
                attachTime: new Date(i.launchTime).toISOString(),
                deleteOnTermination: false,
              },
            },
          ]
        : []
    ),
    virtualizationType: 'hvm',
    tagSet: items(tagItems(ctx, i.instanceId)),
    hypervisor: 'xen',
    ebsOptimized: false,
  });
}

const describeInstances: ActionHandler = (ctx) => {
  dryRunGate(ctx);
  const instances = selectInstances(ctx);
  return {
    reservationSet: items(
      instances.map((i) => ({
        reservationId: `r-${i.instanceId.slice(2)}`,
        ownerId: '000000000000',
        instancesSet: items([renderInstance(ctx, i)]),
      }))
    ),
  };
};

function stateChange(action: 'start' | 'stop' | 'terminate'): ActionHandler {
  return (ctx) => {
    const ids = ctx.params.list('InstanceId');
    if (ids.length === 0) throw new Ec2Error('MissingParameter', 'The request must contain the parameter InstanceId.1');
    for (const id of ids) ctx.model.findInstance(id);
    dryRunGate(ctx);
    const changes = ctx.model.transition(ids, action);
    return {
      instancesSet: items(
        changes.map((c) => ({
          instanceId: c.id,
          currentState: { code: STATE_CODES[c.current], name: c.current },
          previousState: { code: STATE_CODES[c.previous], name: c.previous },
        }))
      ),
    };
  };
}

const describeInstanceStatus: ActionHandler = (ctx) => {
  dryRunGate(ctx);
  const all = ctx.params.bool('IncludeAllInstances') ?? false;
  const now = ctx.model.time();
  const statuses = selectInstances(ctx)
    .filter((i) => all || i.state === 'running')
    .map((i) => {
      // Status checks pass a moment after the instance is running.
      const checked =
        i.state === 'running' && now - (i.runningSince ?? now) >= ctx.config.speed.instanceTransitionSeconds * 1000;
      const status = i.state !== 'running' ? 'not-applicable' : checked ? 'ok' : 'initializing';
      return {
        instanceId: i.instanceId,
        availabilityZone: i.launch.availabilityZone,
        instanceState: { code: STATE_CODES[i.state], name: i.state },
        instanceStatus: {
          status,
          details: items([{ name: 'reachability', status: checked ? 'passed' : 'initializing' }]),
        },
        systemStatus: {
          status,
          details: items([{ name: 'reachability', status: checked ? 'passed' : 'initializing' }]),
        },
      };
    });
  return { instanceStatusSet: items(statuses) };
};

const describeVolumes: ActionHandler = (ctx) => {
  dryRunGate(ctx);
  ctx.model.advance();
  const ids = ctx.params.list('VolumeId');
  const volumes = ids.length > 0 ? ids.map((id) => ctx.model.findVolume(id)) : ctx.model.listVolumes();
  const filters = ctx.params.filters();
  const selected = volumes.filter((v) =>
    passes(filters, (name) => {
      if (name.startsWith('tag:')) return [ctx.model.tagsOf(v.volumeId)[name.slice(4)] ?? ''];
      const map: Record<string, string[]> = {
        'volume-id': [v.volumeId],
        'attachment.instance-id': [v.instanceId ?? ''],
        'attachment.device': [v.device ?? ''],
        status: [v.state],
        size: [String(v.sizeGib)],
      };
      return map[name];
    })
  );
  return {
    volumeSet: items(
      selected.map((v) =>
        compact({
          volumeId: v.volumeId,
          size: v.sizeGib,
          availabilityZone: v.availabilityZone,
          status: v.state,
          createTime: new Date(v.createdAt).toISOString(),
          volumeType: 'standard',
          encrypted: false,
          attachmentSet: items(
            v.instanceId
              ? [
                  {
                    volumeId: v.volumeId,
                    instanceId: v.instanceId,
                    device: v.device,
                    status: 'attached',
                    deleteOnTermination: false,
                  },
                ]
              : []
          ),
          tagSet: items(tagItems(ctx, v.volumeId)),
        })
      )
    ),
  };
};

/** DeleteVolume: an attached volume → VolumeInUse; an unknown (or already deleted) one → InvalidVolume.NotFound. */
const deleteVolume: ActionHandler = (ctx) => {
  const id = ctx.params.get('VolumeId') ?? '';
  ctx.model.findVolume(id);
  dryRunGate(ctx);
  ctx.model.deleteVolume(id);
  return { return: true };
};

const createTags: ActionHandler = (ctx) => {
  const ids = ctx.params.list('ResourceId');
  if (ids.length === 0) throw new Ec2Error('MissingParameter', 'The request must contain the parameter ResourceId.1');
  const tags: Record<string, string> = {};
  for (const n of ctx.params.indexes('Tag')) {
    const key = ctx.params.get(`Tag.${n}.Key`);
    if (!key) throw new Ec2Error('InvalidParameterValue', `Tag.${n}.Key must not be empty`);
    if (key.startsWith('aws:'))
      throw new Ec2Error('InvalidParameterValue', `Tag keys starting with 'aws:' are reserved`);
    tags[key] = ctx.params.get(`Tag.${n}.Value`) ?? '';
  }
  dryRunGate(ctx);
  ctx.model.createTags(ids, tags);
  return { return: true };
};

const describeTags: ActionHandler = (ctx) => {
  dryRunGate(ctx);
  const filters = ctx.params.filters();
  const rows = Object.entries(ctx.model.state.tags).flatMap(([resourceId, tags]) =>
    Object.entries(tags).map(([key, value]) => ({
      resourceId,
      resourceType: resourceId.startsWith('vol-') ? 'volume' : 'instance',
      key,
      value,
    }))
  );
  const selected = rows.filter((r) =>
    passes(
      filters,
      (name) =>
        ({ 'resource-id': [r.resourceId], key: [r.key], value: [r.value], 'resource-type': [r.resourceType] })[name]
    )
  );
  return { tagSet: items(selected) };
};

export const instanceActions: Record<string, ActionHandler> = {
  DescribeInstances: describeInstances,
  StartInstances: stateChange('start'),
  StopInstances: stateChange('stop'),
  TerminateInstances: stateChange('terminate'),
  DescribeInstanceStatus: describeInstanceStatus,
  DescribeVolumes: describeVolumes,
  DeleteVolume: deleteVolume,
  CreateTags: createTags,
  DescribeTags: describeTags,
};
