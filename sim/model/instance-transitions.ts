/** Start/stop/terminate: the instance passes through the intermediate state until `at`. */
import { Ec2Error } from './errors';
import type { ConversionTask, Instance, InstanceStateName } from './types';

export type InstanceAction = 'start' | 'stop' | 'terminate';
export interface StateChange {
  id: string;
  previous: InstanceStateName;
  current: InstanceStateName;
}

export function transitionInstance(
  instance: Instance,
  action: InstanceAction,
  at: number,
  tasks: ConversionTask[]
): StateChange {
  const previous = instance.state;
  if (action === 'start') {
    if (previous === 'pending' && tasks.some((t) => t.instanceId === instance.instanceId && t.state !== 'completed')) {
      throw new Ec2Error('IncorrectInstanceState', `Instance does not have a volume attached at root (/dev/sda1)`);
    }
    if (previous === 'stopped') {
      instance.state = 'pending';
      instance.target = { state: 'running', at };
    }
  } else if (action === 'stop') {
    if (previous === 'running' || previous === 'pending') {
      instance.state = 'stopping';
      instance.target = { state: 'stopped', at };
    }
  } else if (previous !== 'terminated') {
    instance.state = 'shutting-down';
    instance.target = { state: 'terminated', at };
  }
  return { id: instance.instanceId, previous, current: instance.state };
}
