import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_CONFIG } from '../../sim/config';
import { Ec2Model } from '../../sim/model/ec2-model';
import { IdIndex } from '../../sim/model/id-index';
import { instanceActions } from '../../sim/protocol/actions/instances';
import { QueryParams } from '../../sim/protocol/query';
import { emptyState } from '../../sim/model/types';
import { writeDelayMs } from '../../sim/state-file';
import { SIM_TASK_INPUT } from '../helpers/sim-task-input';

/** The same records behind a proxy that counts reads of its elements. */
function counted<T>(array: T[], reads: { n: number }): T[] {
  return new Proxy(array, {
    get(target, key, receiver) {
      if (typeof key === 'string' && /^\d+$/.test(key)) reads.n += 1;
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
}

test('finding an instance, a volume or a task by ID does not scan every record the simulator holds', () => {
  // Each CreateTags, DescribeInstances/DescribeVolumes by ID and task lookup scanned (and copied) every
  // record: milliseconds per EC2 call once a scale run had created 10,000 (bench/README "scale").
  const config = { ...DEFAULT_CONFIG, limits: { ...DEFAULT_CONFIG.limits, maxActiveConversions: 100_000 } };
  const m = new Ec2Model(
    emptyState(),
    () => 1_000_000,
    () => config
  );
  const tasks = Array.from({ length: 3000 }, () => m.createTask(SIM_TASK_INPUT));
  const reads = { n: 0 };
  m.state.instances = counted(m.state.instances, reads);
  m.state.volumes = counted(m.state.volumes, reads);
  m.state.tasks = counted(m.state.tasks, reads);
  for (const task of tasks.slice(0, 300)) {
    assert.equal(m.findInstance(task.instanceId!).instanceId, task.instanceId);
    assert.equal(m.findVolume(task.volumeId).volumeId, task.volumeId);
    m.createTags([task.instanceId!, task.volumeId], { Name: task.id });
    assert.equal(m.taskRecord(task.id), task);
  }
  assert.equal(m.tagsOf(tasks[0]!.volumeId).Name, tasks[0]!.id);
  // Indexing reads each of the 9,000 records once; 300 rounds of scans read millions.
  assert.ok(reads.n <= 2 * 9000, `${reads.n} record reads for 1,200 lookups among 9,000 records`);
  assert.throws(() => m.findInstance('i-0123456789abcdef0'), /does not exist/);
  assert.throws(() => m.findVolume('vol-0123456789abcdef0'), /does not exist/);
});

test("DescribeTags filtered by resource-id reads only those resources' tags", () => {
  const m = new Ec2Model(
    emptyState(),
    () => 1_000_000,
    () => DEFAULT_CONFIG
  );
  for (let i = 0; i < 2000; i++)
    m.state.tags[`i-${i.toString(16).padStart(17, '0')}`] = { Name: `vm-${i}`, batch: 'b' };
  const wanted = 'i-00000000000000007';
  let listings = 0;
  m.state.tags = new Proxy(m.state.tags, {
    ownKeys(target) {
      listings += 1;
      return Reflect.ownKeys(target);
    },
  });
  const describe = (query: string) =>
    instanceActions.DescribeTags!({
      params: QueryParams.parse(`Action=DescribeTags&${query}`),
      model: m,
      region: 'us-east-1',
      config: DEFAULT_CONFIG,
    }) as { tagSet: { item: Array<{ resourceId: string; key: string; value: string }> } };
  const rows = describe(`Filter.1.Name=resource-id&Filter.1.Value.1=${wanted}&Filter.1.Value.2=__proto__`).tagSet.item;
  assert.deepEqual(
    rows.map((r) => [r.resourceId, r.key, r.value]),
    [
      [wanted, 'Name', 'vm-7'],
      [wanted, 'batch', 'b'],
    ]
  );
  assert.equal(listings, 0, "every resource's tags were listed to answer for one");
  // Without a resource-id filter every resource is a candidate, as before.
  assert.equal(describe('Filter.1.Name=key&Filter.1.Value.1=Name').tagSet.item.length, 2000);
});

test('the ID index follows its array: appended records, a replaced array, a record whose ID changed', () => {
  const index = new IdIndex<{ id: string }>((r) => r.id);
  const a = [{ id: 'a' }, { id: 'b' }];
  assert.equal(index.get(a, 'b'), a[1]);
  a.push({ id: 'c' });
  assert.equal(index.get(a, 'c'), a[2]);
  a.push({ id: 'a' });
  assert.equal(index.get(a, 'a'), a[0], 'the first record with an ID, as find() answered');
  const replaced = a.filter((r) => r.id !== 'b');
  assert.equal(index.get(replaced, 'b'), undefined, 'a record filtered out is gone');
  assert.equal(index.get(replaced, 'c'), replaced[1]);
  replaced[0]!.id = 'z';
  assert.equal(index.get(replaced, 'a'), undefined, 'never answers with a record under an ID it no longer has');
});

test('the state file pauses 10× its last write cost between writes, beyond one second when a write costs more', () => {
  assert.equal(writeDelayMs(0), 50);
  assert.equal(writeDelayMs(20), 200);
  // A 10,000-task state took about 200 ms to write: a 1 s ceiling spent a fifth of a core on it.
  assert.equal(writeDelayMs(200), 2000);
  assert.equal(writeDelayMs(5000), 10_000);
});
