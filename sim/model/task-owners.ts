/**
 * Accounts and Regions (issue 20): conversion tasks belong to an account in a Region, as AWS's quotas do
 * (sim/README "Accounts and Regions"). The request being handled is the caller; it sees and counts only its
 * own tasks.
 */
import { IdIndex } from './id-index';
import { Ec2Resources } from './resources';
import type { ConversionTask, TaskOwner } from './types';

export abstract class OwnedTasks extends Ec2Resources {
  /** The account and Region of the request being handled (handlers are synchronous: one at a time). */
  protected caller?: TaskOwner;
  /** Whose tasks without an owner are (created before owners existed, or by direct model calls). */
  homeRegion = 'us-east-1';
  private readonly taskIndex = new IdIndex<ConversionTask>((t) => t.id);

  /** The simulator's record of a task, whoever owns it and listed yet or not (EC2 callers use findTask). */
  taskRecord(id: string): ConversionTask | undefined {
    return this.taskIndex.get(this.state.tasks, id);
  }

  /** Runs `fn` as `caller`: the tasks it creates are the caller's, and it sees and counts only those. */
  asCaller<T>(caller: TaskOwner, fn: () => T): T {
    this.caller = caller;
    try {
      return fn();
    } finally {
      this.caller = undefined;
    }
  }

  /** The account and Region a task belongs to. */
  ownerOf(task: Pick<ConversionTask, 'owner'>): TaskOwner {
    return task.owner ?? { accountId: this.config().accounts.defaultAccountId, region: this.homeRegion };
  }

  protected ownerKey(owner: TaskOwner | undefined): string {
    const o = this.ownerOf({ owner });
    return `${o.accountId}/${o.region}`;
  }

  /** The current caller's own task (any task when no caller is set: the control API, tests). */
  protected mine(task: ConversionTask): boolean {
    return this.caller === undefined || this.ownerKey(task.owner) === this.ownerKey(this.caller);
  }
}
