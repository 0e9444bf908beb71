/**
 * `npm run provision`: makes sure the local tools exist (building or installing what is missing) and
 * prints where each came from. Safe to run again: cached tools are found at once.
 */
import { resolvePythonVenv } from '../dev/python-venv';
import { resolveChromium, resolveDiskTools, resolveQemuImg, resolveTemporalCli, resolveVersitygw } from '../dev/tools';

async function main(): Promise<void> {
  const log = (line: string): void => console.log(`[provision] ${line}`);
  const started = Date.now();
  const temporal = await resolveTemporalCli({ log });
  log(
    `temporal CLI: ${temporal ? `${temporal.path} (${temporal.source})` : 'not available: tests fall back to the SDK download'}`
  );
  const s3 = await resolveVersitygw({ log });
  log(`versitygw: ${s3 ? `${s3.path} (${s3.source})` : 'not available'}`);
  const qemu = await resolveQemuImg({ log });
  log(`qemu-img: ${qemu ? `${qemu.path} (${qemu.source})` : 'not available'}`);
  const missingDiskTools = await resolveDiskTools({ log });
  log(
    `disk tools (guest images, the simulator's judge): ${missingDiskTools.length === 0 ? 'all present' : `missing ${missingDiskTools.join(', ')}`}`
  );
  const venv = await resolvePythonVenv({ log });
  log(`python venv (boto3, AWS CLI v1 for the conformance suite): ${venv.python}`);
  const chromium = await resolveChromium({ log });
  log(
    `chromium: ${chromium ? `${chromium.path} (${chromium.source})` : 'not available: the Web UI browser test will fail'}`
  );
  log(`done in ${Math.round((Date.now() - started) / 1000)} s`);
  if (!s3 || !qemu) process.exit(1);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
