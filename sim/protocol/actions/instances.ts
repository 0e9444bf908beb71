/**
 * What post-import validation needs: DescribeInstances, DescribeVolumes, CreateTags, DescribeTags,
 * Start/Stop/TerminateInstances and DescribeInstanceStatus, with `InstanceId.N` and the common filters.
 * The volume calls are in volumes.ts.
 */
import { Ec2Error } from '../../model/errors';
import type { Instance, InstanceStateName } from '../../model/types';
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
      'block-device-mapping.volume-id': [
        ...new Set([i.rootVolumeId, ...ctx.model.volumesOf(i).map((v) => v.volumeId)]),
      ],
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

/** Every volume attached to the instance, as its block device mapping lists them (the root first). */
function blockDevices(ctx: ActionContext, i: Instance): Array<Record<string, unknown>> {
  return ctx.model.volumesOf(i).map((v) => ({
    deviceName: v.device ?? '/dev/sda1',
    ebs: {
      volumeId: v.volumeId,
      status: ctx.model.attachmentStatus(v),
      attachTime: new Date(v.attachTime ?? i.launchTime).toISOString(),
      deleteOnTermination: false,
    },
  }));
}

function renderInstance(ctx: ActionContext, i: Instance): Record<string, unknown> {
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
    blockDeviceMapping: items(blockDevices(ctx, i)),
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
  // With a resource-id filter only those resources' tags can pass: listing every tag of every resource made
  // each DescribeTags cost milliseconds once a scale run had tagged 20,000 resources (bench/README "scale").
  const ids = filters.get('resource-id');
  const tagged = ids
    ? [...new Set(ids)].flatMap((id) =>
        Object.hasOwn(ctx.model.state.tags, id) ? [[id, ctx.model.tagsOf(id)] as const] : []
      )
    : Object.entries(ctx.model.state.tags);
  const rows = tagged.flatMap(([resourceId, tags]) =>
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
  CreateTags: createTags,
  DescribeTags: describeTags,
};
