/**
 * The guest inside a qcow2 or VHDX is inspected on the site worker right after its conversion and before
 * any upload, through the whole workflow (real Temporal, S3 server behind a counting proxy, simulator,
 * real activities, qemu-img): a CentOS 4 guest (kernel 2.6.9) fails the VM with GuestRefused, 0 bytes
 * reach S3 and no conversion task is created; an Ubuntu 22.04 guest migrates with the converted guest's
 * verdict in its status. An OVA's CentOS 4 is refused at pre-flight (its disk read in place).
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import type { MigrateVmInput, MigrateVmResult, MigrationSettings } from '../../common/contracts/migration';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../../common/contracts/migration';
import { FailureType } from '../../common/failures';
import { vmStatusQuery } from '../../workflows/messages';
import type { CountingProxy } from '../helpers/counting-proxy';
import { startCountingProxy } from '../helpers/counting-proxy';
import type { OtherContainer } from '../helpers/guest-containers';
import { makeGuestIn } from '../helpers/guest-containers';
import { GUESTS } from '../helpers/guest-images';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import type { MigrationBed } from '../helpers/migration-bed';
import { QUICK_CONVERSIONS, startMigrationBed } from '../helpers/migration-bed';

const SETTINGS: MigrationSettings = {
  ...DEFAULT_SETTINGS,
  partSizeBytes: 2 * 1024 * 1024,
  uploadConcurrency: 3,
  pollInitialSeconds: 0.5,
  pollMaxSeconds: 2,
  importListingWaitSeconds: 10,
  deadlineSeconds: 600,
};

let bed: MigrationBed;
let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let proxy: CountingProxy;
let images: string;
let scratch: string;
let queue: string;
const batch = `gac-${Date.now().toString(36)}`;

before(async () => {
  bed = await startMigrationBed('guest-after-conversion', { sim: { config: { speed: QUICK_CONVERSIONS } } });
  ({ temporal, s3, sim, images, scratch } = bed);
  proxy = await startCountingProxy(s3.endpoint);
  queue = await bed.worker('worker', { config: { ...bed.aws, s3Endpoint: proxy.endpoint } });
});

after(async () => {
  await proxy?.close();
  await bed?.stop();
});

async function start(name: string, image: string, format: string) {
  const input: MigrateVmInput = {
    batch,
    spec: vmSpecSchema.parse({ name, image, format, architecture: 'x86_64', instanceType: 't2.medium' }),
    settings: SETTINGS,
  };
  return temporal.client.workflow.start('migrateVmWorkflow', {
    taskQueue: queue,
    workflowId: `${batch}/${name}`,
    args: [input],
  });
}

const putBytesOf = (vm: string): number =>
  proxy
    .puts()
    .filter((p) => p.path.includes(`/${batch}/${vm}/`))
    .reduce((n, p) => n + p.bytes, 0);

for (const container of ['qcow2', 'vhdx', 'ova'] as OtherContainer[]) {
  test(`${container}: CentOS 4 is refused (GuestRefused, naming its kernel) with 0 bytes uploaded and no task`, async () => {
    const name = `old-${container}`;
    const image = await makeGuestIn(images, name, GUESTS.centos4, container);
    const handle = await start(name, image, container.toUpperCase());
    await assert.rejects(handle.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      const text = JSON.stringify(err.cause, Object.getOwnPropertyNames(err.cause ?? {}));
      assert.match(text, new RegExp(FailureType.GuestRefused));
      assert.match(text, /2\.6\.9-103\.EL/);
      return true;
    });
    const status = await handle.query(vmStatusQuery);
    assert.equal(status.inspection?.verdict, 'refuse');
    assert.match(status.inspection?.kernel ?? '', /2\.6\.9/);
    assert.equal(putBytesOf(name), 0, 'nothing of the refused VM reached S3');
    const state = await sim.state();
    assert.equal(state.tasks.filter((t) => t.manifestUrl.includes(`/${batch}/${name}/`)).length, 0);
    // The converted image is not left in the scratch folder.
    const left = await readdir(scratch, { recursive: true });
    assert.ok(!left.some((f) => String(f).includes(name) && String(f).endsWith('.vmdk')), left.join(', '));
  });
}

test("qcow2: Ubuntu 22.04 migrates, its status carrying the converted guest's verdict", async () => {
  const image = await makeGuestIn(images, 'ubuntu-qcow2', GUESTS.ubuntu2204, 'qcow2');
  const handle = await start('ubuntu-qcow2', image, 'QCOW2');
  const result = (await handle.result()) as MigrateVmResult;
  assert.equal(result.phase, 'Completed');
  const status = await handle.query(vmStatusQuery);
  assert.equal(status.inspection?.verdict, 'ok', JSON.stringify(status.inspection));
  assert.equal(status.inspection?.os, 'Ubuntu 22.04.4 LTS');
  assert.ok(putBytesOf('ubuntu-qcow2') > 0);
});
