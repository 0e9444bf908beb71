/**
 * VM Import's rules for ImportInstance (common/vm-import-rules.ts): the launch rules refuse what AWS
 * refuses and say what to change; the OS and kernel lists accept what the guide lists (CentOS 5.11 with
 * 2.6.18) and nothing older (CentOS 4 with 2.6.9).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  LINUX_INSTANCE_TYPES,
  checkLaunchRules,
  distributionVersionListed,
  importInstanceOffered,
  kernelListed,
  nearestLinuxInstanceType,
  windowsListed,
} from '../../common/vm-import-rules';

const linux = { architecture: 'x86_64', instanceType: 't2.micro' } as const;
const rules = (spec: Parameters<typeof checkLaunchRules>[0]): string[] => checkLaunchRules(spec).map((r) => r.rule);

describe('launch rules', () => {
  test('a Linux row on m5.large is refused, naming the rule, its page and the nearest type VM Import takes', () => {
    const [refusal, ...rest] = checkLaunchRules({ ...linux, instanceType: 'm5.large' });
    assert.equal(rest.length, 0);
    assert.equal(refusal?.rule, 'linux-instance-type');
    assert.match(refusal.message, /m5\.large/);
    assert.match(refusal.fix, /m3\.large/);
    assert.match(refusal.source, /^https:\/\/docs\.aws\.amazon\.com\/vm-import\//);
  });

  test('an i386 Linux row is refused (Linux imports are 64-bit only)', () => {
    const refusals = checkLaunchRules({ ...linux, architecture: 'i386' });
    assert.deepEqual(
      refusals.map((r) => r.rule),
      ['linux-64-bit']
    );
    assert.match(refusals[0]!.fix, /x86_64/);
  });

  test('a 64-bit Linux row on a listed type and a Windows row on a modern type pass', () => {
    assert.deepEqual(rules(linux), []);
    assert.deepEqual(rules({ architecture: 'x86_64', instanceType: 'm5.large', platform: 'Windows' }), []);
    assert.deepEqual(rules({ architecture: 'i386', instanceType: 'm3.medium', platform: 'Windows' }), []);
  });

  test('Windows on an Arm or Mac type is refused', () => {
    for (const t of ['m6g.large', 'c7gn.xlarge', 't4g.micro', 'a1.large', 'mac2.metal'])
      assert.deepEqual(
        rules({ architecture: 'x86_64', instanceType: t, platform: 'Windows' }),
        ['windows-instance-type'],
        t
      );
  });

  test('the nearest Linux type keeps the class and the size as far as the old families go', () => {
    assert.equal(nearestLinuxInstanceType('c5.4xlarge'), 'c3.4xlarge');
    assert.equal(nearestLinuxInstanceType('r5.large'), 'r3.large');
    assert.equal(nearestLinuxInstanceType('t3.micro'), 't2.micro');
    assert.equal(nearestLinuxInstanceType('m5.24xlarge'), 'm3.2xlarge');
    assert.equal(nearestLinuxInstanceType('i3en.xlarge'), 'i2.xlarge');
    for (const t of ['m5.large', 'z1d.metal', 'p3.2xlarge', 'weird'])
      assert.ok(LINUX_INSTANCE_TYPES.includes(nearestLinuxInstanceType(t)));
  });

  test('one network interface, one private IPv4 address', () => {
    assert.deepEqual(rules({ ...linux, networkInterfaces: 2 }), ['one-network-interface']);
    assert.deepEqual(rules({ ...linux, privateIp: '10.0.1.20' }), []);
    for (const ip of ['fd00::5', '10.0.1.20,10.0.1.21', '10.0.1.256'])
      assert.deepEqual(rules({ ...linux, privateIp: ip }), ['private-ipv4'], ip);
  });

  test('user data up to 16 KiB passes; one byte more is refused', () => {
    assert.deepEqual(rules({ ...linux, userDataBytes: 16 * 1024 }), []);
    assert.deepEqual(rules({ ...linux, userDataBytes: 16 * 1024 + 1 }), ['user-data-size']);
  });

  test("EC2's tag limits: 50 tags, key 128 and value 256 characters, no aws: prefix", () => {
    const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v']));
    assert.deepEqual(rules({ ...linux, tags: many }), ['ec2-tags']);
    assert.deepEqual(rules({ ...linux, tags: { ['k'.repeat(129)]: 'v' } }), ['ec2-tags']);
    assert.deepEqual(rules({ ...linux, tags: { k: 'v'.repeat(257) } }), ['ec2-tags']);
    assert.deepEqual(rules({ ...linux, tags: { 'AWS:owner': 'x' } }), ['ec2-tags']);
    assert.deepEqual(rules({ ...linux, tags: { ['k'.repeat(128)]: 'v'.repeat(256) } }), []);
  });

  test('the boot volume: at most 2 TiB, never smaller than the disk', () => {
    assert.deepEqual(rules({ ...linux, volumeSizeGib: 2048 }), []);
    assert.deepEqual(rules({ ...linux, volumeSizeGib: 2049 }), ['boot-volume-2tib']);
    assert.deepEqual(rules({ ...linux, volumeSizeGib: 8, virtualBytes: 9 * 1024 ** 3 }), ['volume-size']);
  });

  test('ImportInstance is offered only in the Regions the guide names', () => {
    assert.equal(importInstanceOffered('us-east-1'), true);
    assert.equal(importInstanceOffered('eu-west-3'), false);
  });

  test("the simulator's independent Linux instance-type list says the same", () => {
    const sim = JSON.parse(readFileSync(path.join(__dirname, '../../sim/data/instance-types.json'), 'utf8')) as {
      linux: { types: string[] };
    };
    assert.deepEqual([...LINUX_INSTANCE_TYPES].sort(), [...sim.linux.types].sort());
  });
});

describe('supported operating systems', () => {
  test("CentOS 5.11 with 2.6.18 is on AWS's list; CentOS 4 with 2.6.9 is not", () => {
    assert.equal(kernelListed('centos', '2.6.18-398.el5'), true);
    assert.equal(distributionVersionListed('centos', '5.11'), true);
    assert.equal(kernelListed('centos', '2.6.9-103.EL'), false);
    assert.equal(distributionVersionListed('centos', '4.9'), false);
    assert.equal(distributionVersionListed('centos', '6.0'), false); // "6.0 lacks required drivers"
  });

  test('kernel series match whole components, with the exceptions and suffixes the guide gives', () => {
    assert.equal(kernelListed('ubuntu', '5.15.0-91-generic'), true);
    assert.equal(kernelListed('ubuntu', '5.15.01'), false);
    assert.equal(kernelListed('ubuntu', '5.16.0-1-generic'), false);
    assert.equal(kernelListed('rhel', '3.10.0-1160.el7.x86_64'), true);
    assert.equal(kernelListed('rhel', '2.6.32-71.el6.x86_64'), false);
    assert.equal(kernelListed('rhel', '2.6.32-754.el6.x86_64'), true);
    assert.equal(kernelListed('ol', '2.6.32-400.37.15.el5uek'), true);
    assert.equal(kernelListed('gentoo', '5.15.0'), false);
  });

  test('Windows: the listed versions pass; XP, 2003 without a service pack, Nano Server and Windows 11 do not', () => {
    assert.equal(windowsListed({ productName: 'Windows Server 2019 Datacenter' }).supported, true);
    assert.equal(windowsListed({ productName: 'Windows Server 2003', servicePack: 'Service Pack 2' }).supported, true);
    assert.equal(windowsListed({ productName: 'Windows Server 2003' }).supported, false);
    assert.equal(windowsListed({ productName: 'Windows Server 2003 R2' }).supported, true);
    assert.equal(windowsListed({ productName: 'Windows Server Datacenter', releaseId: '1709' }).supported, true);
    assert.equal(windowsListed({ productName: 'Microsoft Windows XP' }).supported, false);
    assert.equal(
      windowsListed({ productName: 'Windows Server 2016', installationType: 'Nano Server' }).supported,
      false
    );
    const w11 = windowsListed({ productName: 'Windows 11 Pro' });
    assert.equal(w11.supported, false);
    assert.match(w11.why ?? '', /UEFI/);
  });
});
