/** Resource IDs in EC2's long format (since 2018): i-, vol-, import-i-, import-vol- with 17 hex digits. */
import { randomBytes } from 'node:crypto';

const hex = (n: number): string =>
  randomBytes(Math.ceil(n / 2))
    .toString('hex')
    .slice(0, n);

export const newInstanceId = (): string => `i-${hex(17)}`;
export const newVolumeId = (): string => `vol-${hex(17)}`;
export const newTaskId = (kind: 'instance' | 'volume'): string =>
  `import-${kind === 'instance' ? 'i' : 'vol'}-${hex(17)}`;

/** Also the old 8-character form, which state files written before the long IDs still hold. */
export const TASK_ID_PATTERN = /^import-(i|vol)-[0-9a-z]+$/;
