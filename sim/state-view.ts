/**
 * `GET /_sim/state`: what tests and operators look at. Manifest URLs lose their query string (the
 * presigned signature), everything else is as the model holds it, with tags inlined. Unlike EC2's own
 * Describe calls it shows every resource, listed yet or not (`visibleAt` says from when EC2 lists it).
 */
import type { Ec2Model } from './model/ec2-model';

function withoutQuery(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

export function stateView(model: Ec2Model): Record<string, unknown> {
  const { state } = model;
  const at = model.time();
  return {
    tasks: state.tasks.map((t) => ({
      id: t.id,
      kind: t.kind,
      state: t.state,
      statusMessage: model.statusMessage(t, at),
      pendingReason: t.pendingReason,
      judged: t.judged,
      manifestUrl: withoutQuery(t.manifestUrl),
      format: t.format,
      bytes: t.bytes,
      bytesConverted: model.bytesConverted(t, at),
      volumeSizeGib: t.volumeSizeGib,
      instanceId: t.instanceId,
      volumeId: t.volumeId,
      createdAt: new Date(t.createdAt).toISOString(),
      endedAt: iso(t.endedAt),
      readyAt: iso(t.readyAt),
      slotAt: iso(t.slotAt),
      visibleAt: iso(t.visibleAt),
      ...model.ownerOf(t),
    })),
    instances: state.instances.map((i) => ({
      instanceId: i.instanceId,
      state: i.state,
      instanceType: i.launch.instanceType,
      architecture: i.launch.architecture,
      platform: i.launch.platform,
      availabilityZone: i.launch.availabilityZone,
      subnetId: i.launch.subnetId,
      rootVolumeId: i.rootVolumeId,
      visibleAt: iso(i.visibleAt),
      tags: model.tagsOf(i.instanceId),
    })),
    volumes: state.volumes.map((v) => ({ ...v, visibleAt: iso(v.visibleAt), tags: model.tagsOf(v.volumeId) })),
    calls: state.calls,
    throttled: state.throttled ?? {},
  };
}
