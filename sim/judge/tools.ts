/**
 * Running the Debian tools the judge reads disks with (qemu-img, debugfs, ntfs-3g's ntfsls/ntfscat,
 * hivexget). A tool that is not installed is reported as such, so the judge can say what it could not
 * check instead of failing the import.
 */
import { execFile } from 'node:child_process';

export class ToolMissingError extends Error {
  constructor(readonly tool: string) {
    super(`${tool} is not installed`);
  }
}

export interface ToolResult {
  stdout: Buffer;
  stderr: string;
  code: number;
}

const TIMEOUT_MS = 120_000;

/** Runs `tool args`, feeding `input` on stdin; never rejects for a non-zero exit (the caller reads `code`). */
export function runTool(tool: string, args: string[], input?: string): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      tool,
      args,
      { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, timeout: TIMEOUT_MS },
      (err, stdout, stderr) => {
        const code = (err as { code?: unknown } | null)?.code;
        if (code === 'ENOENT') return reject(new ToolMissingError(tool));
        if (err && typeof code !== 'number') return reject(new Error(`${tool} failed: ${err.message}`));
        resolve({ stdout, stderr: stderr.toString('utf8'), code: typeof code === 'number' ? code : 0 });
      }
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}
