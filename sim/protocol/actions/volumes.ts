/**
 * The EBS volume calls: DescribeVolumes (what validation and cleanup read), AttachVolume (a data volume from
 * ImportVolume onto the imported instance) and DeleteVolume (what a rollback or cleanup sends once a volume
 * is no longer attached).
 */
import type { Volume } from '../../model/types';
import { compact, items } from '../xml';
import type { ActionContext, ActionHandler } from './context';
import { dryRunGate } from './context';
import { tagItems } from './conversion-tasks';
import { passes } from './instances';

const iso = (ms: number): string => new Date(ms).toISOString();

function renderAttachment(ctx: ActionContext, v: Volume): Record<string, unknown> {
  const instance = ctx.model.instanceRecord(v.instanceId);
  return compact({
    volumeId: v.volumeId,
    instanceId: v.instanceId,
    device: v.device,
    status: ctx.model.attachmentStatus(v),
    attachTime: iso(v.attachTime ?? instance?.launchTime ?? v.createdAt),
    deleteOnTermination: false,
  });
}

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
        'attachment.status': v.instanceId ? [ctx.model.attachmentStatus(v)] : [],
        'availability-zone': [v.availabilityZone],
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
          createTime: iso(v.createdAt),
          volumeType: 'standard',
          encrypted: false,
          attachmentSet: items(v.instanceId ? [renderAttachment(ctx, v)] : []),
          tagSet: items(tagItems(ctx, v.volumeId)),
        })
      )
    ),
  };
};

/**
 * AttachVolume: `VolumeId`, `InstanceId` and `Device` (all required by the model); the answer is the
 * VolumeAttachment, `attaching`. The checks and their order are in Ec2Resources.attachVolume.
 */
const attachVolume: ActionHandler = (ctx) => {
  const p = ctx.params;
  const volumeId = p.require('VolumeId');
  const instanceId = p.require('InstanceId');
  const device = p.require('Device');
  ctx.model.findVolume(volumeId);
  ctx.model.findInstance(instanceId);
  dryRunGate(ctx);
  const volume = ctx.model.attachVolume(volumeId, instanceId, device);
  return renderAttachment(ctx, volume);
};

/** DeleteVolume: an attached volume → VolumeInUse; an unknown (or already deleted) one → InvalidVolume.NotFound. */
const deleteVolume: ActionHandler = (ctx) => {
  const id = ctx.params.get('VolumeId') ?? '';
  ctx.model.findVolume(id);
  dryRunGate(ctx);
  ctx.model.deleteVolume(id);
  return { return: true };
};

export const volumeActions: Record<string, ActionHandler> = {
  DescribeVolumes: describeVolumes,
  AttachVolume: attachVolume,
  DeleteVolume: deleteVolume,
};
