/** qemu-img info as a cross-check of the virtual size pre-flight read from the header. */
import { execFile } from 'node:child_process';
import type { DiskFormat } from '../../common/contracts/migration';

// qemu-img cross-check (optional)

export const QEMU_FORMAT: Record<DiskFormat, string> = { VMDK: 'vmdk', VHD: 'vpc', RAW: 'raw' };

/** `qemu-img info`'s virtual size, or undefined when qemu-img is missing or cannot read the file. */
export function qemuVirtualSize(qemuImg: string, file: string, format: DiskFormat): Promise<number | undefined> {
  return new Promise((resolve) => {
    execFile(
      qemuImg,
      ['info', '-U', '-f', QEMU_FORMAT[format], '--output=json', file],
      { timeout: 30_000 },
      (err, stdout) => {
        if (err) return resolve(undefined);
        try {
          const size = (JSON.parse(stdout) as { 'virtual-size'?: unknown })['virtual-size'];
          resolve(typeof size === 'number' ? size : undefined);
        } catch {
          resolve(undefined);
        }
      }
    );
  });
}
