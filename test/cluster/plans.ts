/**
 * The cluster scenarios. FULL is `npm run test:cluster` (issue 21): 60 VMs in three waves across two
 * sites, a third of them with the boot check, three planned failures, and the five disruptions spread over
 * the waves. REDUCED is one of each disruption on 10 VMs, struck as soon as its moment comes.
 *
 * Sizes: the point is the topology, not bytes: 16 MiB random-byte RAW images (two 10 MiB parts) through an
 * 8 MiB/s uplink per site, so a site's uploads are in flight long enough to be struck, and conversions at
 * 2 MiB/s (about 8 s each), so VMs wait on them while the services are disrupted.
 */
import type { ClusterScenario } from './scenario';

const COMMON = {
  sites: ['dc1', 'dc2'],
  imageMiB: 16,
  uplinkBytesPerSecond: 8 * 1024 * 1024,
  conversionBytesPerSecond: 2 * 1024 * 1024,
  momentTimeoutMs: 180_000,
};

export const FULL: ClusterScenario = {
  ...COMMON,
  vms: 60,
  waves: 3,
  failEvery: 20,
  bootCheckEvery: 3,
  maxUploads: 6,
  maxConversions: 8,
  gapMs: 3000,
  timeoutMs: 45 * 60_000,
  // Wave 1 (the first third to finish): a site worker during its uploads, PostgreSQL while VMs convert;
  // wave 2: the history service, then the second shared worker; wave 3: the matching service.
  plan: [
    { kind: 'kill-site-worker', during: 'uploading' },
    { kind: 'restart-postgres', during: 'converting', afterFinished: 0.1 },
    { kind: 'kill-history', during: 'converting', afterFinished: 0.35 },
    { kind: 'scale-shared-workers', during: 'any', afterFinished: 0.45 },
    { kind: 'kill-matching', during: 'uploading', afterFinished: 0.66 },
  ],
};

export const REDUCED: ClusterScenario = {
  ...COMMON,
  vms: 10,
  waves: 2,
  failEvery: 10,
  bootCheckEvery: 3,
  maxUploads: 4,
  maxConversions: 4,
  gapMs: 1000,
  timeoutMs: 15 * 60_000,
  plan: [
    { kind: 'kill-site-worker', during: 'uploading' },
    { kind: 'restart-postgres', during: 'converting' },
    { kind: 'kill-history', during: 'converting' },
    { kind: 'scale-shared-workers', during: 'any' },
    { kind: 'kill-matching', during: 'any' },
  ],
};
