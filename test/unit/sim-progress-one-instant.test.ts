import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_CONFIG, mergeConfig } from '../../sim/config';
import { Ec2Model } from '../../sim/model/ec2-model';
import { emptyState } from '../../sim/model/types';
import { renderTask } from '../../sim/protocol/actions/conversion-tasks';
import { QueryParams } from '../../sim/protocol/query';
import { stateView } from '../../sim/state-view';
import { SIM_TASK_INPUT } from '../helpers/sim-task-input';

// A clock that moves one progress step (100 ms) each time it is read once `running` is set: any answer
// that reads it twice shows a status message and a BytesConverted from different steps.
const config = mergeConfig(DEFAULT_CONFIG, { speed: { conversionBytesPerSecond: 10 * 1024 * 1024, stepSeconds: 0.1 } });

function converting() {
  let now = 1_000_000;
  let running = false;
  const model = new Ec2Model(
    emptyState(),
    () => (running ? (now += 100) : now),
    () => config
  );
  const task = model.createTask(SIM_TASK_INPUT);
  model.startConversion(task.id);
  now += 3_000;
  model.advance();
  running = true;
  return { model, task };
}

function percentOf(message: unknown): number {
  const match = /^Progress: (\d+)%$/.exec(String(message));
  assert.ok(match, `a progress message: ${String(message)}`);
  return Number(match[1]);
}

test('DescribeConversionTasks: "Progress: N%" and BytesConverted of one task come from one instant', () => {
  const { model, task } = converting();
  const ctx = { params: QueryParams.parse(''), model, region: 'us-east-1', config };
  for (let i = 0; i < 5; i++) {
    const rendered = renderTask(ctx, task) as {
      statusMessage: string;
      importInstance: { volumes: { item: Array<{ bytesConverted: number; statusMessage: string }> } };
    };
    const volume = rendered.importInstance.volumes.item[0]!;
    const percent = Math.floor((volume.bytesConverted / task.bytes) * 100);
    assert.equal(percentOf(volume.statusMessage), percent, JSON.stringify(volume));
    assert.equal(percentOf(rendered.statusMessage), percent, JSON.stringify(rendered.statusMessage));
  }
});

test("/_sim/state: a task's status message and bytesConverted come from one instant", () => {
  const { model } = converting();
  for (let i = 0; i < 5; i++) {
    const [view] = (
      stateView(model) as { tasks: Array<{ statusMessage: string; bytesConverted: number; bytes: number }> }
    ).tasks;
    assert.equal(percentOf(view!.statusMessage), Math.floor((view!.bytesConverted / view!.bytes) * 100));
  }
});
