/**
 * The dispatch table: EC2 Query `Action` → handler, and the API versions the simulator speaks. An
 * unknown action is `InvalidAction`; a Version other than 2013-02-01 / 2016-11-15 is `InvalidParameterValue`.
 */
import { Ec2Error } from '../model/errors';
import { conversionTaskActions } from './actions/conversion-tasks';
import type { ActionHandler } from './actions/context';
import { instanceActions } from './actions/instances';
import type { QueryParams } from './query';

export const ACTIONS: Readonly<Record<string, ActionHandler>> = { ...conversionTaskActions, ...instanceActions };

export const VERSIONS: ReadonlySet<string> = new Set(['2016-11-15', '2013-02-01']);

/** The handler for a request's Action, or the EC2 error for an unknown action or version. */
export function route(params: QueryParams): { action: string; handler: ActionHandler } {
  const action = params.get('Action') ?? '';
  const handler = Object.prototype.hasOwnProperty.call(ACTIONS, action) ? ACTIONS[action] : undefined;
  if (!handler) throw new Ec2Error('InvalidAction', `The action ${action || '(none)'} is not valid for this web service.`);
  const version = params.get('Version');
  if (version !== undefined && !VERSIONS.has(version)) {
    throw new Ec2Error('InvalidParameterValue', `Version ${version} is not supported (use 2016-11-15 or 2013-02-01)`);
  }
  return { action, handler };
}
