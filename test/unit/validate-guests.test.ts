/**
 * The documented verdict of each test guest (built with sfdisk, mke2fs -d, mkntfs + ntfs-3g, qemu-img:
 * test/helpers/guest-images*.ts) through both places that enforce it: `vmconvoy validate` (validateCommand,
 * the CLI's whole path) and the workflow's pre-flight activity (preflightVm), which decides whatever the CLI
 * saw. Also ImportInstance's launch rules at validate (a Linux row on m5.large, an i386 Linux row) and the
 * `inspection=skip` override.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { preflightVm } from '../../activities/disk-image/preflight';
import { validateCommand } from '../../client/commands/validate';
import type { InventoryResult } from '../../client/inventory/read-inventory';
import { renderProblems } from '../../client/output/problems';
import { vmSpecSchema } from '../../common/contracts/migration';
import { FailureType } from '../../common/failures';
import { LINUX_INSTANCE_TYPES } from '../../common/vm-import-rules';
import type { GuestContainer, GuestSpec } from '../helpers/guest-images';
import { GUESTS, makeGuestImage } from '../helpers/guest-images';
import type { DiskSpec } from '../helpers/guest-images-more';
import { RHEL7_RELEASE, UBUNTU2204_RELEASE, linuxRoot, makeDisk } from '../helpers/guest-images-more';
import { tempDir } from '../helpers/testbed';

/** Big enough for VM Import's 250 MiB of free space. */
const ROOMY = 320;
const HEADER = 'name,image,architecture,instance_type,platform,inspection';

interface Case {
  name: string;
  verdict: 'ok' | 'warn' | 'refuse';
  /** The rule a refusal or warning names. */
  rule?: string;
  /** What the message must say (e.g. the kernel). */
  says?: RegExp;
  platform?: 'Windows';
  make(dir: string, file: string): Promise<string>;
}

const guest =
  (spec: GuestSpec, container: GuestContainer, sizeMiB = ROOMY) =>
  (dir: string, file: string): Promise<string> =>
    makeGuestImage(dir, file, spec, container, { sizeMiB });
const disk =
  (spec: DiskSpec, container: GuestContainer) =>
  (dir: string, file: string): Promise<string> =>
    makeDisk(dir, file, spec, container);
const ubuntu = linuxRoot({ osRelease: UBUNTU2204_RELEASE, kernel: '5.15.0-91-generic' });
const byDevice = linuxRoot({
  osRelease: UBUNTU2204_RELEASE,
  kernel: '5.15.0-91-generic',
  fstab: '/dev/sda1 / ext4 defaults 0 1\n',
});
const rhel = linuxRoot({ osRelease: RHEL7_RELEASE, kernel: '3.10.0-1160.el7.x86_64' });

/** Each documented guest, in a different container VM Import takes. */
const CASES: Case[] = [
  { name: 'ubuntu', verdict: 'ok', make: guest(GUESTS.ubuntu2204, 'stream-vmdk') },
  {
    name: 'rhel7',
    verdict: 'ok',
    make: disk({ sizeMiB: ROOMY + 1, partitions: [{ sizeMiB: ROOMY, ...rhel }] }, 'dynamic-vhd'),
  },
  { name: 'centos511', verdict: 'ok', make: guest(GUESTS.centos511, 'fixed-vhd') },
  {
    name: 'centos4',
    verdict: 'refuse',
    rule: 'linux-kernel',
    says: /2\.6\.9-103\.EL/,
    make: guest(GUESTS.centos4, 'stream-vmdk'),
  },
  { name: 'nopart', verdict: 'refuse', rule: 'partition-table', make: guest(GUESTS.unpartitioned, 'raw') },
  {
    name: 'gpt',
    verdict: 'refuse',
    rule: 'mbr-required',
    says: /GPT/,
    make: disk({ label: 'gpt', sizeMiB: 66, partitions: [{ sizeMiB: 64, ...ubuntu }] }, 'dynamic-vhd'),
  },
  {
    name: 'full',
    verdict: 'refuse',
    rule: 'free-space',
    says: /250 MiB/,
    make: guest(GUESTS.ubuntu2204, 'stream-vmdk', 64),
  },
  {
    name: 'bydevice',
    verdict: 'warn',
    rule: 'fstab-device-names',
    says: /\/dev\/sda1/,
    make: disk({ sizeMiB: ROOMY + 1, partitions: [{ sizeMiB: ROOMY, ...byDevice }] }, 'stream-vmdk'),
  },
  {
    name: 'win-full',
    verdict: 'refuse',
    rule: 'free-space',
    says: /6 GiB/,
    platform: 'Windows',
    make: guest(GUESTS.windows2019, 'fixed-vhd', 64),
  },
];

let dir: { dir: string; remove(): Promise<void> };
const images = new Map<string, string>();
before(async () => {
  dir = await tempDir('vmconvoy-validate-guests-');
  for (const c of CASES) images.set(c.name, await c.make(dir.dir, `${c.name}.img`));
});
after(async () => dir?.remove());

async function validate(lines: string[]): Promise<{ result: InventoryResult; text: string }> {
  const file = path.join(dir.dir, `inv-${Math.random().toString(36).slice(2)}.csv`);
  await writeFile(file, [HEADER, ...lines].join('\n') + '\n');
  const result = await validateCommand(file);
  return { result, text: renderProblems('inv.csv', result) };
}

const row = (c: Case, extra = ''): string =>
  `${c.name},${images.get(c.name)},x86_64,${c.platform ? 'm5.large' : 't2.medium'},${c.platform ?? ''},${extra}`;

describe('validate: each guest gets its documented verdict, each image inspected once', () => {
  for (const c of CASES) {
    test(`${c.name}: ${c.verdict}${c.rule ? ` (${c.rule})` : ''}`, async () => {
      const { result, text } = await validate([row(c)]);
      const seen = result.inspections?.find((i) => i.vm === c.name)?.inspection;
      assert.equal(seen?.verdict, c.verdict, JSON.stringify(seen));
      if (c.verdict === 'refuse') {
        assert.ok(!result.ok, text);
        const problem = result.errors.find((e) => e.line === 2 && e.column === 'image');
        assert.match(problem?.message ?? '', new RegExp(`rule ${c.rule}`));
        if (c.says) assert.match(problem!.message, c.says);
        assert.match(text, /nothing was started/);
      } else {
        assert.ok(result.ok, text);
        if (c.rule)
          assert.ok(
            result.warnings?.some((w) => w.line === 2 && w.message.includes(c.rule!)),
            text
          );
        if (c.says) assert.match(text, c.says);
        assert.match(text, /every row and image valid/);
      }
      // What was found is shown, never file contents.
      assert.doesNotMatch(JSON.stringify(result), /menuentry|LABEL=root|kernel image stand-in/);
    });
  }

  test('found: OS, kernel, file system and free space are shown for an ok guest', async () => {
    const { result, text } = await validate([row(CASES[0]!)]);
    assert.ok(result.ok);
    assert.match(
      text,
      /inv\.csv:2 ubuntu: inspection ok: Ubuntu 22\.04\.4 LTS, kernel 5\.15\.0-91-generic, ext4, \d+ MiB free/
    );
  });

  test('two rows on one refused image: both refused, each on its own line', async () => {
    const c = CASES.find((x) => x.name === 'centos4')!;
    const { result } = await validate([
      row(c),
      row({ ...c, name: 'centos4-b' }).replace('centos4-b.img', 'centos4.img'),
    ]);
    assert.ok(!result.ok);
    assert.deepEqual(
      result.errors.filter((e) => e.column === 'image').map((e) => e.line),
      [2, 3]
    );
  });

  test('inspection=skip: a refused guest passes validate, recorded as skipped by the operator', async () => {
    const c = CASES.find((x) => x.name === 'centos4')!;
    const { result, text } = await validate([row(c, 'skip')]);
    assert.ok(result.ok, text);
    assert.equal(result.inspections?.[0]?.inspection.verdict, 'skipped');
    assert.match(text, /inspection skipped by operator/);
  });

  test('inspection: a value other than enforce or skip is a problem on its column; enforce is the default', async () => {
    const c = CASES.find((x) => x.name === 'centos4')!;
    const { result } = await validate([row(c, 'off')]);
    assert.ok(!result.ok);
    assert.ok(result.errors.some((e) => e.column === 'inspection' && /enforce or skip/.test(e.message)));
    const enforced = await validate([row(c, 'enforce')]);
    assert.ok(!enforced.result.ok);
  });
});

describe("validate: ImportInstance's launch rules, before any image is read", () => {
  test('a Linux row on m5.large is refused, naming the rule, the page and the nearest type VM Import takes', async () => {
    assert.ok(!LINUX_INSTANCE_TYPES.includes('m5.large'));
    const { result } = await validate([`web,${images.get('ubuntu')},x86_64,m5.large,,`]);
    assert.ok(!result.ok);
    const p = result.errors.find((e) => e.column === 'instance_type');
    assert.match(p?.message ?? '', /linux-instance-type/);
    assert.match(p!.message, /m3\.large/);
    assert.match(p!.message, /docs\.aws\.amazon\.com\/vm-import/);
  });

  test('an i386 Linux row is refused (VM Import takes 64-bit Linux only)', async () => {
    const { result } = await validate([`old,${images.get('ubuntu')},i386,t2.medium,,`]);
    assert.ok(!result.ok);
    const p = result.errors.find((e) => e.column === 'architecture');
    assert.match(p?.message ?? '', /x86_64.*rule linux-64-bit/);
  });

  test('the same types on a Windows row pass the launch rules', async () => {
    const { result } = await validate([`w,${images.get('ubuntu')},i386,m5.large,Windows,skip`]);
    assert.ok(result.ok, JSON.stringify(result));
  });
});

describe('pre-flight (the activity): the same verdicts, whatever the CLI saw', () => {
  const spec = (c: Case, extra: Record<string, unknown> = {}) =>
    vmSpecSchema.parse({
      name: c.name,
      image: images.get(c.name),
      architecture: 'x86_64',
      instanceType: c.platform ? 'm5.large' : 't2.medium',
      platform: c.platform,
      ...extra,
    });

  for (const c of CASES) {
    test(`${c.name}: ${c.verdict === 'refuse' ? `GuestRefused (${c.rule})` : c.verdict}`, async () => {
      if (c.verdict === 'refuse') {
        await assert.rejects(preflightVm(spec(c), { qemuImg: false }), (err: unknown) => {
          assert.ok(err instanceof ApplicationFailure);
          assert.equal(err.type, FailureType.GuestRefused);
          assert.equal(err.nonRetryable, true);
          assert.match(err.message, new RegExp(`rule ${c.rule}`));
          if (c.says) assert.match(err.message, c.says);
          // The inspection rides along for the VM's status.
          assert.equal((err.details?.[0] as { verdict?: string }).verdict, 'refuse');
          return true;
        });
      } else {
        const result = await preflightVm(spec(c), { qemuImg: false });
        assert.equal(result.inspection?.verdict, c.verdict);
        if (c.rule) assert.ok(result.inspection?.reasons.some((r) => r.rule === c.rule));
      }
    });
  }

  test('inspection=skip: pre-flight passes a refused guest and records the skip', async () => {
    const c = CASES.find((x) => x.name === 'centos4')!;
    const result = await preflightVm(spec(c, { inspection: 'skip' }), { qemuImg: false });
    assert.equal(result.inspection?.verdict, 'skipped');
    assert.match(result.inspection.reasons[0]!.message, /skipped by operator/);
  });

  test('launch rules: a Linux row on m5.large and an i386 Linux row fail with LaunchRuleViolated', async () => {
    const c = CASES[0]!;
    for (const extra of [{ instanceType: 'm5.large' }, { architecture: 'i386' }]) {
      await assert.rejects(preflightVm(spec(c, extra), { qemuImg: false }), (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure);
        assert.equal(err.type, FailureType.LaunchRuleViolated);
        assert.equal(err.nonRetryable, true);
        return true;
      });
    }
  });
});
