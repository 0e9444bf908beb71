/**
 * The simulator's resources, plain JSON-serialisable data (persisted to the state file as is).
 * Times are epoch milliseconds from the injected clock.
 */
import type { NetworkState } from './network-state';

export type TaskState = 'active' | 'cancelling' | 'cancelled' | 'completed';
export type InstanceStateName = 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';

export interface LaunchSettings {
  architecture: string;
  instanceType: string;
  platform?: string;
  availabilityZone: string;
  subnetId?: string;
  privateIp?: string;
  groupNames: string[];
  groupIds: string[];
  monitoring: boolean;
  shutdownBehavior: string;
  userDataBytes: number;
}

export interface ConversionTask {
  id: string;
  kind: 'instance' | 'volume';
  state: TaskState;
  statusMessage: string;
  createdAt: number;
  expiresAt: number;
  description?: string;
  format: string;
  /** Image.Bytes as requested. */
  bytes: number;
  volumeSizeGib: number;
  /** The presigned manifest URL EC2 was given (simulator-private state; `/_sim/state` shows it without query). */
  manifestUrl: string;
  availabilityZone: string;
  instanceId?: string;
  volumeId: string;
  launch?: LaunchSettings;
  /** While Pending: what the last attempt to read the manifest and parts ran into. */
  pendingReason?: string;
  /** When the first reading of manifest and parts found them complete and right: the task queues for a slot. */
  readyAt?: number;
  /** When a conversion slot took it (speed.conversionSlots); reading the image starts here. */
  slotAt?: number;
  /** How long EC2 reads the image after slotAt (still Pending); progress starts after it. */
  readMs?: number;
  durationMs?: number;
  /** Not listed by Describe* before this (eventual consistency); undefined = at once. */
  visibleAt?: number;
  /** What the content judge found on the disk (`/_sim/state` shows it). */
  judged?: string;
  /** Fraction of the conversion at which it fails, and the status message it fails with. */
  failAt?: number;
  failMessage?: string;
  cancelRequestedAt?: number;
  endedAt?: number;
  /** The account and Region whose caller created it (tasks are theirs alone); unset = the default caller's. */
  owner?: TaskOwner;
}

/** An AWS account in one Region: the scope of conversion tasks and of their limit. */
export interface TaskOwner {
  accountId: string;
  region: string;
}

export interface Instance {
  instanceId: string;
  launch: LaunchSettings;
  state: InstanceStateName;
  /** Where a transition (start/stop/terminate) is heading, and when it lands. */
  target?: { state: InstanceStateName; at: number };
  rootVolumeId: string;
  launchTime: number;
  /** When it last entered `running` (status checks pass a moment later). */
  runningSince?: number;
  /** Not listed by Describe* before this (eventual consistency). */
  visibleAt?: number;
}

export interface Volume {
  volumeId: string;
  sizeGib: number;
  availabilityZone: string;
  state: 'creating' | 'available' | 'in-use' | 'deleted';
  instanceId?: string;
  device?: string;
  /** When AttachVolume was called (unset for an import's root volume: attached when the import completed). */
  attachTime?: number;
  /** The attachment reads `attaching` until this, then `attached` (AttachVolume only). */
  attachedAt?: number;
  createdAt: number;
  /** Not listed by Describe* before this (eventual consistency). */
  visibleAt?: number;
}

export interface SimState {
  tasks: ConversionTask[];
  instances: Instance[];
  volumes: Volume[];
  /** resourceId → key → value */
  tags: Record<string, Record<string, string>>;
  calls: Record<string, number>;
  /** Calls answered RequestLimitExceeded because the action's token bucket was empty (not injected faults). */
  throttled?: Record<string, number>;
  /** Zones, VPCs, subnets, security groups seeded through `POST /_sim/network`; unset = the default network. */
  network?: NetworkState;
}

export function emptyState(): SimState {
  return { tasks: [], instances: [], volumes: [], tags: {}, calls: {}, throttled: {} };
}
