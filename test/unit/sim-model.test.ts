import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_CONFIG, mergeConfig } from '../../sim/config';
import { checkImage, failureMarker } from '../../sim/conversion/image-checks';
import { NotAManifestError, checkManifest, parseManifest } from '../../sim/conversion/manifest';
import { TokenBucket } from '../../sim/limits/token-bucket';
import { Ec2Model } from '../../sim/model/ec2-model';
import { emptyState } from '../../sim/model/types';
import { QueryParams } from '../../sim/protocol/query';
import { SIM_TASK_INPUT as input } from '../helpers/sim-task-input';

function model(config = DEFAULT_CONFIG) {
  let now = 1_000_000;
  const m = new Ec2Model(
    emptyState(),
    () => now,
    () => config
  );
  return { m, tick: (ms: number) => (now += ms) };
}

test('a task converts in time proportional to its size, in steps, and ends with a stopped instance', () => {
  const config = mergeConfig(DEFAULT_CONFIG, { speed: { conversionBytesPerSecond: 10 * 1024 * 1024, stepSeconds: 1 } });
  const { m, tick } = model(config);
  const task = m.createTask(input);
  assert.equal(m.describeTasks([task.id])[0]!.statusMessage, 'Pending');
  m.startConversion(task.id);
  tick(4500);
  m.advance();
  assert.equal(task.statusMessage, 'Progress: 40%');
  assert.equal(m.bytesConverted(task), 40 * 1024 * 1024);
  tick(5500);
  m.advance();
  assert.equal(task.state, 'completed');
  assert.equal(m.state.instances[0]!.state, 'stopped');
  assert.equal(m.state.volumes[0]!.state, 'in-use');
});

test('a failure point cancels the task with its message and removes what it created', () => {
  const { m, tick } = model(mergeConfig(DEFAULT_CONFIG, { speed: { conversionBytesPerSecond: 10 * 1024 * 1024 } }));
  const task = m.createTask(input);
  m.startConversion(task.id, { failure: { at: 0.5, message: 'ClientError: Unsupported kernel version' } });
  tick(4900);
  m.advance();
  assert.equal(task.state, 'active');
  tick(200);
  m.advance();
  assert.deepEqual([task.state, task.statusMessage], ['cancelled', 'ClientError: Unsupported kernel version']);
  assert.deepEqual([m.state.instances.length, m.state.volumes.length], [0, 0]);
});

test('the active-conversion quota and expiry follow the clock', () => {
  const { m, tick } = model(mergeConfig(DEFAULT_CONFIG, { limits: { maxActiveConversions: 1, expirySeconds: 60 } }));
  const task = m.createTask(input);
  assert.throws(() => m.createTask(input), { code: 'ResourceLimitExceeded' });
  tick(61_000);
  m.advance();
  assert.equal(task.statusMessage, 'Task expired and automatically canceled');
  assert.doesNotThrow(() => m.createTask(input));
});

test('token buckets refill at their rate and never above the burst', () => {
  let now = 0;
  const bucket = new TokenBucket(2, 1, () => now);
  assert.deepEqual([bucket.tryTake(), bucket.tryTake(), bucket.tryTake()], [true, true, false]);
  now += 1000;
  assert.deepEqual([bucket.tryTake(), bucket.tryTake()], [true, false]);
  now += 60_000;
  assert.deepEqual([bucket.tryTake(), bucket.tryTake(), bucket.tryTake()], [true, true, false]);
});

test('query parameters: 1-based lists in index order and filters', () => {
  const p = QueryParams.parse(
    'Action=X&ConversionTaskId.2=b&ConversionTaskId.1=a&Filter.1.Name=tag%3AName&Filter.1.Value.1=web&Filter.1.Value.2=db'
  );
  assert.deepEqual(p.list('ConversionTaskId'), ['a', 'b']);
  assert.deepEqual([...p.filters()], [['tag:Name', ['web', 'db']]]);
  assert.throws(() => p.require('Platform'), { code: 'MissingParameter' });
});

test('manifest ranges must tile the image; image checks use the real messages', () => {
  const part = (index: number, start: number, end: number) => ({
    index,
    start,
    end,
    key: 'k',
    headUrl: 'http://s3/part',
    getUrl: 'http://s3/part',
  });
  const importer = { name: 'test', version: '1.0.0', release: '2010-11-15' };
  const m = {
    version: '2010-11-15',
    fileFormat: 'RAW',
    importer,
    selfDestructUrl: 'http://s3/m',
    size: 30,
    volumeSize: 8,
    parts: [part(0, 0, 9), part(1, 10, 29)],
  };
  assert.equal(checkManifest(m, { format: 'RAW', bytes: 30, volumeSizeGib: 8 }), undefined);
  assert.match(
    checkManifest({ ...m, parts: [part(0, 0, 9), part(1, 11, 29)] }, { format: 'RAW', bytes: 30, volumeSizeGib: 8 })!,
    /does not continue at 10/
  );
  assert.match(checkManifest(m, { format: 'RAW', bytes: 31, volumeSizeGib: 8 })!, /does not match Image\.Bytes/);
  assert.match(
    checkManifest({ ...m, fileFormat: 'VHD' }, { format: 'RAW', bytes: 30, volumeSizeGib: 8 })!,
    /file-format VHD does not match the requested format RAW/
  );
  assert.match(
    checkManifest({ ...m, volumeSize: 9 }, { format: 'RAW', bytes: 30, volumeSizeGib: 8 })!,
    /volume-size 9 does not match Volume\.Size 8/
  );
  assert.match(
    checkManifest({ ...m, version: '2007-01-01' }, { format: 'RAW', bytes: 30, volumeSizeGib: 8 })!,
    /unsupported version/
  );
  assert.match(
    checkManifest({ ...m, parts: [part(0, 0, 9)] }, { format: 'RAW', bytes: 30, volumeSizeGib: 8 })!,
    /parts cover 10 bytes/
  );
  assert.match(
    checkManifest(
      { ...m, parts: [part(0, 0, 9), { ...part(1, 10, 29), getUrl: '' }] },
      { format: 'RAW', bytes: 30, volumeSizeGib: 8 }
    )!,
    /missing part 1 get-url/
  );
  const sparse = Buffer.alloc(512);
  sparse.write('KDMV', 0, 'latin1');
  sparse.writeUInt32LE(3, 8);
  assert.equal(
    checkImage('VMDK', sparse, Buffer.alloc(512)),
    'ClientError: Disk validation failed [Unsupported VMDK File Format]'
  );
  assert.equal(checkImage('RAW', Buffer.alloc(512), Buffer.alloc(512)), undefined);
  assert.equal(failureMarker(Buffer.from('xxVMCONVOY_SIM_FAIL=boom\nrest')), 'boom');
  assert.equal(failureMarker(Buffer.from('nothing')), undefined);
});

test('a document that is not a manifest is told apart from a wrong manifest (EC2 waits on the first, fails the second)', () => {
  assert.throws(() => parseManifest('\x00\x01binary disk bytes'), NotAManifestError);
  assert.throws(() => parseManifest('<html><body>503</body></html>'), NotAManifestError);
  const wrongCount =
    '<manifest><version>2010-11-15</version><import><size>1</size><volume-size>1</volume-size><parts count="2"><part index="0"><byte-range start="0" end="0"/><get-url>http://s3/p</get-url></part></parts></import></manifest>';
  assert.throws(
    () => parseManifest(wrongCount),
    (err: Error) => !(err instanceof NotAManifestError) && /parts count 2 but 1 parts listed/.test(err.message)
  );
  const good = parseManifest(wrongCount.replace('count="2"', 'count="1"'));
  assert.deepEqual([good.size, good.parts.length, good.parts[0]!.getUrl], [1, 1, 'http://s3/p']);
});

test('a pending task remembers why it waits until its conversion starts', () => {
  const { m } = model();
  const task = m.createTask(input);
  m.noteWaiting(task.id, 'manifest unreadable (HTTP 403)');
  assert.equal(task.pendingReason, 'manifest unreadable (HTTP 403)');
  m.startConversion(task.id);
  assert.deepEqual([task.pendingReason, task.statusMessage], [undefined, 'Progress: 0%']);
  m.noteWaiting(task.id, 'late answer from an older poll');
  assert.equal(task.pendingReason, undefined, 'a converting task is no longer waiting');
});

test('slot assignment looks at the active tasks only, however many tasks the simulator has held', () => {
  // A 10,000-row benchmark leaves 10,000 ended tasks behind; grouping all of them by owner on every call
  // made each EC2 call cost O(tasks²) and the simulator, not vmconvoy, set the pace (bench/README "scale").
  let ownerLookups = 0;
  class CountingModel extends Ec2Model {
    protected override ownerKey(owner: Parameters<Ec2Model['ownerOf']>[0]['owner']): string {
      ownerLookups += 1;
      return super.ownerKey(owner);
    }
  }
  let now = 1_000_000;
  const config = mergeConfig(DEFAULT_CONFIG, { speed: { conversionSlots: 1, conversionBytesPerSecond: 1024 ** 3 } });
  const m = new CountingModel(
    emptyState(),
    () => now,
    () => config
  );
  const ended = m.createTask(input);
  m.startConversion(ended.id);
  now += 60_000;
  m.advance();
  assert.equal(ended.state, 'completed');
  for (let i = 0; i < 5000; i++) m.state.tasks.push({ ...ended, id: `import-i-ended${i}` });
  const first = m.createTask(input);
  const second = m.createTask(input);
  m.startConversion(first.id);
  m.startConversion(second.id);
  ownerLookups = 0;
  m.advance();
  assert.ok(ownerLookups <= 2, `owner looked up ${ownerLookups} times for 2 active tasks among 5,003`);
  // Still one slot per account: the first ready task holds it, the second queues.
  assert.notEqual(first.slotAt, undefined);
  assert.equal(second.slotAt, undefined);
  assert.equal(m.statusMessage(second), 'Pending');
});
