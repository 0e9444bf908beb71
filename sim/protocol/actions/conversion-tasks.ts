/** ImportInstance, ImportVolume, DescribeConversionTasks, CancelConversionTask. */
import { Ec2Error } from '../../model/errors';
import { launchNetworkError } from '../../model/network-state';
import type { ConversionTask, LaunchSettings } from '../../model/types';
import { ARCHITECTURES, FORMATS, PLATFORMS, SHUTDOWN_BEHAVIORS, checkInstanceType, oneOf } from '../launch-rules';
import type { QueryParams } from '../query';
import { compact, items } from '../xml';
import { networkOf, zoneIdPrefix } from './vpc';
import type { ActionContext, ActionHandler } from './context';
import { dryRunGate } from './context';

function diskImage(
  p: QueryParams,
  prefix: string
): { format: string; bytes: number; manifestUrl: string; volumeSizeGib: number; description?: string } {
  const format = p.require(`${prefix}Image.Format`);
  oneOf(`${prefix}Image.Format`, format, FORMATS);
  const bytes = p.int(`${prefix}Image.Bytes`);
  if (bytes === undefined)
    throw new Ec2Error('MissingParameter', `The request must contain the parameter ${prefix}Image.Bytes`);
  const manifestUrl = p.require(`${prefix}Image.ImportManifestUrl`);
  if (!/^https?:\/\//.test(manifestUrl))
    throw new Ec2Error(
      'InvalidParameterValue',
      `Invalid S3 source location: ${prefix}Image.ImportManifestUrl must be an http(s) URL`
    );
  const volumeSizeGib = p.int(`${prefix}Volume.Size`);
  if (volumeSizeGib === undefined)
    throw new Ec2Error('MissingParameter', `The request must contain the parameter ${prefix}Volume.Size`);
  if (volumeSizeGib < 1 || volumeSizeGib > 16384)
    throw new Ec2Error('InvalidParameterValue', `Volume.Size ${volumeSizeGib} GiB is out of range (1-16384)`);
  if (bytes < 1) throw new Ec2Error('InvalidParameterValue', `Image.Bytes must be positive`);
  if (bytes > volumeSizeGib * 1024 ** 3 * 2)
    throw new Ec2Error(
      'DiskImageSizeTooLarge',
      'The disk image exceeds the allowed limit for the requested volume size'
    );
  return { format, bytes, manifestUrl, volumeSizeGib, description: p.get(`${prefix}Description`) };
}

function launchSettings(ctx: ActionContext, platform: string): LaunchSettings {
  const p = ctx.params;
  const ls = 'LaunchSpecification.';
  // Required by the 2013-02-01 reference; the 2016-11-15 model marks nothing in LaunchSpecification as required
  // but documents no default for an import either, so the simulator asks for both rather than invent one.
  const architecture = p.require(`${ls}Architecture`);
  oneOf(`${ls}Architecture`, architecture, ARCHITECTURES);
  const instanceType = p.require(`${ls}InstanceType`);
  checkInstanceType(instanceType, platform);
  const shutdownBehavior = p.get(`${ls}InstanceInitiatedShutdownBehavior`) ?? 'stop';
  oneOf(`${ls}InstanceInitiatedShutdownBehavior`, shutdownBehavior, SHUTDOWN_BEHAVIORS);
  // 2016-11-15 spells these `UserData.Data` and `Monitoring`; 2013-02-01 `UserData` and `Monitoring.Enabled`.
  const userData = p.get(`${ls}UserData.Data`) ?? p.get(`${ls}UserData`) ?? '';
  const monitoring = p.bool(`${ls}Monitoring`) ?? p.bool(`${ls}Monitoring.Enabled`) ?? false;
  const privateIp = p.get(`${ls}PrivateIpAddress`);
  if (privateIp !== undefined && !/^\d{1,3}(\.\d{1,3}){3}$/.test(privateIp)) {
    throw new Ec2Error('InvalidParameterValue', `Value (${privateIp}) for parameter privateIpAddress is invalid.`);
  }
  const subnetId = p.get(`${ls}SubnetId`);
  if (subnetId !== undefined && !/^subnet-[0-9a-f]+$/.test(subnetId))
    throw new Ec2Error('InvalidSubnetID.Malformed', `Invalid subnet ID '${subnetId}'`);
  return {
    architecture,
    instanceType,
    platform: platform === 'Windows' ? 'windows' : undefined,
    availabilityZone: p.get(`${ls}Placement.AvailabilityZone`) ?? `${ctx.region}a`,
    subnetId,
    privateIp,
    groupNames: p.list(`${ls}GroupName`),
    groupIds: p.list(`${ls}GroupId`),
    monitoring,
    shutdownBehavior,
    userDataBytes: Buffer.from(userData, 'base64').length,
  };
}

export function renderTask(ctx: ActionContext, task: ConversionTask): Record<string, unknown> {
  // One clock reading for the whole task: a progress step falling between two readings made
  // "Progress: 25%" appear beside the bytes of 20%.
  const at = ctx.model.time();
  const bytesConverted = ctx.model.bytesConverted(task, at);
  const statusMessage = ctx.model.statusMessage(task, at);
  const image = { format: task.format, size: task.bytes, importManifestUrl: task.manifestUrl };
  const volume = { id: task.volumeId, size: task.volumeSizeGib };
  const common = compact({
    conversionTaskId: task.id,
    expirationTime: new Date(task.expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z'),
  });
  const detail =
    task.kind === 'instance'
      ? {
          importInstance: compact({
            description: task.description,
            instanceId: task.instanceId,
            platform: task.launch?.platform === 'windows' ? 'Windows' : undefined,
            volumes: items([
              {
                availabilityZone: task.availabilityZone,
                bytesConverted,
                description: task.description ?? '',
                image,
                volume,
                status: task.state === 'completed' ? 'completed' : task.state === 'active' ? 'active' : 'cancelled',
                statusMessage,
              },
            ]),
          }),
        }
      : {
          importVolume: compact({
            availabilityZone: task.availabilityZone,
            bytesConverted,
            description: task.description,
            image,
            volume,
          }),
        };
  return {
    ...common,
    ...detail,
    state: task.state,
    statusMessage,
    tagSet: items(tagItems(ctx, task.id)),
  };
}

export function tagItems(ctx: ActionContext, resourceId: string): Array<{ key: string; value: string }> {
  return Object.entries(ctx.model.tagsOf(resourceId)).map(([key, value]) => ({ key, value }));
}

const importInstance: ActionHandler = (ctx) => {
  const p = ctx.params;
  const platform = p.require('Platform');
  oneOf('Platform', platform, PLATFORMS);
  const images = p.indexes('DiskImage');
  if (images.length === 0) throw new Ec2Error('MissingParameter', 'The request must contain the parameter DiskImage.1');
  if (images.length > 1)
    throw new Ec2Error(
      'InvalidParameterCombination',
      'ImportInstance supports exactly one DiskImage (single-volume VMs only)'
    );
  const disk = diskImage(p, `DiskImage.${images[0]}.`);
  const launch = launchSettings(ctx, platform);
  const networkError = launchNetworkError(networkOf(ctx), launch); // the subnet and groups exist
  if (networkError) throw networkError;
  dryRunGate(ctx);
  const task = ctx.model.createTask({
    kind: 'instance',
    description: p.get('Description') ?? disk.description,
    format: disk.format,
    bytes: disk.bytes,
    volumeSizeGib: disk.volumeSizeGib,
    manifestUrl: disk.manifestUrl,
    availabilityZone: launch.availabilityZone,
    launch,
  });
  return { conversionTask: renderTask(ctx, task) };
};

const importVolume: ActionHandler = (ctx) => {
  const disk = diskImage(ctx.params, '');
  // The volume is made in that zone, so it must be one of the Region's (AttachVolume later needs it to match).
  const zones = networkOf(ctx).zones;
  const zoneId = ctx.params.get('AvailabilityZoneId');
  const byId =
    zoneId === undefined ? undefined : zones.find((_, i) => `${zoneIdPrefix(ctx.region)}-az${i + 1}` === zoneId);
  if (zoneId !== undefined && byId === undefined)
    throw new Ec2Error('InvalidParameterValue', `Invalid availability zone-id: [${zoneId}]`);
  const availabilityZone = ctx.params.get('AvailabilityZone') ?? byId ?? `${ctx.region}a`;
  if (!zones.includes(availabilityZone))
    throw new Ec2Error('InvalidParameterValue', `Invalid availability zone: [${availabilityZone}]`);
  if (byId !== undefined && byId !== availabilityZone)
    throw new Ec2Error('InvalidParameterCombination', 'AvailabilityZone and AvailabilityZoneId name different zones');
  dryRunGate(ctx);
  const task = ctx.model.createTask({
    kind: 'volume',
    description: ctx.params.get('Description'),
    ...disk,
    availabilityZone,
  });
  return { conversionTask: renderTask(ctx, task) };
};

const describeConversionTasks: ActionHandler = (ctx) => {
  dryRunGate(ctx);
  const tasks = ctx.model.describeTasks(ctx.params.list('ConversionTaskId'));
  return { conversionTasks: items(tasks.map((t) => renderTask(ctx, t))) };
};

const cancelConversionTask: ActionHandler = (ctx) => {
  const id = ctx.params.require('ConversionTaskId');
  dryRunGate(ctx);
  ctx.model.cancelTask(id);
  return { return: true };
};

export const conversionTaskActions: Record<string, ActionHandler> = {
  ImportInstance: importInstance,
  ImportVolume: importVolume,
  DescribeConversionTasks: describeConversionTasks,
  CancelConversionTask: cancelConversionTask,
};
