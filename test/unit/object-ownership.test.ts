/**
 * Names and keys that decide what belongs to whom: VM names made only of dots are refused, and a VM's
 * objects live under its Temporal namespace, apart from the old layout and from every other VM's.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VM_NAME_PATTERN, vmSpecSchema } from '../../common/contracts/migration';
import { importMarkerKey, isPartKey, manifestKey, resourceRecordKey, vmPrefix } from '../../common/object-keys';
import type { Instance } from '@aws-sdk/client-ec2';
import { isBootedImport, taggedForVm } from '../../activities/vm-resources';

describe('VM names', () => {
  for (const name of ['.', '..', '...']) {
    it(`refuses ${JSON.stringify(name)} with a message that says why`, () => {
      const parsed = vmSpecSchema.safeParse({
        name,
        image: '/i.raw',
        architecture: 'x86_64',
        instanceType: 't2.micro',
      });
      assert.equal(parsed.success, false);
      assert.match(parsed.error?.issues[0]?.message ?? '', /not only dots/);
      assert.equal(VM_NAME_PATTERN.test(name), false);
    });
  }
  it('still accepts names with dots among other characters', () => {
    for (const name of ['web.1', '.hidden', 'a..b', 'x.']) assert.ok(VM_NAME_PATTERN.test(name), name);
  });
});

describe('VM object keys', () => {
  const loc = { batch: 'b1', vm: 'vm1' };
  it('put the namespace in the prefix, apart from the layout without it', () => {
    assert.equal(vmPrefix('vmconvoy/', loc), 'vmconvoy/b1/vm1/');
    assert.equal(vmPrefix('vmconvoy/', { ...loc, namespace: 'prod' }), 'vmconvoy/ns=prod/b1/vm1/');
    assert.equal(manifestKey('p/', { ...loc, namespace: 'team.acct' }), 'p/ns=team.acct/b1/vm1/manifest.xml');
    assert.equal(importMarkerKey('p/', { ...loc, namespace: 'a' }), 'p/ns=a/b1/vm1/import-requested');
    assert.equal(resourceRecordKey('p/', { ...loc, namespace: 'a' }), 'p/ns=a/b1/vm1/resources.json');
  });
  it('two namespaces never share a folder, and no old-layout folder contains a namespaced one', () => {
    const a = vmPrefix('p/', { ...loc, namespace: 'a' });
    const b = vmPrefix('p/', { ...loc, namespace: 'b' });
    assert.ok(!a.startsWith(b) && !b.startsWith(a));
    // An old-layout VM of batch "ns=a" cannot exist: `=` is not allowed in a batch name.
    assert.equal(VM_NAME_PATTERN.test('ns=a'), false);
  });
  it('recognise only image parts as parts', () => {
    const l = { ...loc, namespace: 'a' };
    assert.ok(isPartKey('p/', l, 'p/ns=a/b1/vm1/image.part12'));
    assert.ok(!isPartKey('p/', l, 'p/ns=a/b1/vm1/resources.json'));
    assert.ok(!isPartKey('p/', l, 'p/ns=b/b1/vm1/image.part1'));
  });
});

describe('which instance is whose', () => {
  const tagged = (vm: string, batch = 'b1'): Instance => ({
    Tags: [
      { Key: 'vmconvoy:vm', Value: vm },
      { Key: 'vmconvoy:batch', Value: batch },
    ],
  });
  it('an instance tagged for another VM or batch is never this VM’s; an untagged one may be', () => {
    assert.ok(taggedForVm(tagged('vm1'), { batch: 'b1', vm: 'vm1' }));
    assert.ok(!taggedForVm(tagged('vm2'), { batch: 'b1', vm: 'vm1' }));
    assert.ok(!taggedForVm(tagged('vm1', 'b2'), { batch: 'b1', vm: 'vm1' }));
    assert.ok(taggedForVm({}, { batch: 'b1', vm: 'vm1' }));
  });
  it('a pending instance without its root volume is still converting, not booted', () => {
    const root = [{ DeviceName: '/dev/sda1', Ebs: { VolumeId: 'vol-1' } }];
    assert.ok(isBootedImport({ State: { Name: 'running' } }));
    assert.ok(isBootedImport({ State: { Name: 'pending' }, BlockDeviceMappings: root }));
    assert.ok(!isBootedImport({ State: { Name: 'pending' }, BlockDeviceMappings: [] }));
    assert.ok(!isBootedImport({ State: { Name: 'stopped' }, BlockDeviceMappings: root }));
  });
});
