/**
 * EC2 waiting for uploads: every `speed.pendingPollMs` each task still `Pending` tries to read its
 * manifest and parts. Readable and right → conversion starts, to fail where the content judge, the
 * image's failure marker or an AWS-initiated cancellation (`faults.awsCancelRate`) says; readable and
 * wrong → the task is cancelled with EC2's message; unreadable → keep waiting (until the task expires).
 */
import type { SimConfig } from '../config';
import type { ConversionOutcome, Ec2Model } from '../model/ec2-model';
import { inspectUpload } from './inspect-upload';

export const AWS_CANCEL_MESSAGE = 'SERVER_ERROR : conversion : AWS initiated task cancellation';

export interface Poller {
  /** One round now (tests, and the timer). */
  pollOnce(): Promise<void>;
  stop(): void;
}

export function startPoller(model: Ec2Model, config: () => SimConfig, random: () => number): Poller {
  const inspecting = new Map<string, Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const inspect = async (taskId: string): Promise<void> => {
    const task = model.taskRecord(taskId);
    if (!task) return;
    const result = await inspectUpload(task, config());
    if (stopped) return;
    if (result.kind === 'waiting') model.noteWaiting(task.id, result.reason);
    else if (result.kind === 'rejected') model.rejectTask(task.id, result.message);
    else if (result.kind === 'ready') {
      const rate = config().faults.awsCancelRate;
      const awsCancel = rate > 0 && random() < rate;
      const judgement = result.judgement;
      // The marker is an explicit fault: it wins over what the content says (sim/README.md).
      const marker = result.failMessage ?? judgement?.marker;
      const failure = marker
        ? { at: 0.5, message: marker }
        : (judgement?.failure ?? (awsCancel ? { at: 0.3, message: AWS_CANCEL_MESSAGE } : undefined));
      const outcome: ConversionOutcome = { failure, platform: judgement?.platform, judged: judgement?.judged };
      model.startConversion(task.id, outcome);
    }
  };

  const pollOnce = async (): Promise<void> => {
    model.advance();
    const started = model
      .pendingTasks()
      .filter((t) => !inspecting.has(t.id))
      .map((t) => {
        const p = inspect(t.id)
          .catch(() => undefined)
          .finally(() => inspecting.delete(t.id));
        inspecting.set(t.id, p);
        return p;
      });
    await Promise.all(started);
  };

  const schedule = (): void => {
    if (stopped) return;
    // Inspections run in the background: a slow S3 server delays only its own task, not the next round.
    timer = setTimeout(() => {
      void pollOnce();
      schedule();
    }, config().speed.pendingPollMs);
  };
  schedule();

  return {
    pollOnce,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
