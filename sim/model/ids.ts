/** Resource IDs in EC2's shapes: i-/vol- with 17 hex digits, import-i-/import-vol- with 8 characters. */
import { randomBytes } from 'node:crypto';

const hex = (n: number): string =>
  randomBytes(Math.ceil(n / 2))
    .toString('hex')
    .slice(0, n);
const alnum = (n: number): string =>
  Array.from(randomBytes(n), (b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('');

export const newInstanceId = (): string => `i-${hex(17)}`;
export const newVolumeId = (): string => `vol-${hex(17)}`;
export const newTaskId = (kind: 'instance' | 'volume'): string =>
  `import-${kind === 'instance' ? 'i' : 'vol'}-${alnum(8)}`;

export const TASK_ID_PATTERN = /^import-(i|vol)-[0-9a-z]+$/;
