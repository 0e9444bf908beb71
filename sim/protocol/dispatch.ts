/**
 * The dispatch table: EC2 Query `Action` → handler, after the checks EC2 makes before any action runs:
 * `Version` is required (common query parameters) and must be one of EC2's dated versions (else
 * `NoSuchVersion`), the action must exist in that version (else `InvalidAction`), and the parameters must
 * fit the action's input shape (`UnknownParameter`, `MissingParameter`).
 */
import { API_VERSIONS, FIRST_VERSION } from '../data/api-versions';
import { Ec2Error } from '../model/errors';
import { conversionTaskActions } from './actions/conversion-tasks';
import type { ActionHandler } from './actions/context';
import { instanceActions } from './actions/instances';
import { volumeActions } from './actions/volumes';
import { vpcActions } from './actions/vpc';
import { checkParams } from './check-params';
import { INPUT_SHAPES } from './input-shapes';
import type { QueryParams } from './query';

export const ACTIONS: Readonly<Record<string, ActionHandler>> = {
  ...conversionTaskActions,
  ...instanceActions,
  ...volumeActions,
  ...vpcActions,
};

export const VERSIONS: ReadonlySet<string> = new Set(API_VERSIONS);

const has = (o: object, key: string): boolean => Object.prototype.hasOwnProperty.call(o, key);

/** The handler for a request's Action, or the EC2 error for an unknown action, version or parameter. */
export function route(params: QueryParams): { action: string; handler: ActionHandler; version: string } {
  const action = params.get('Action') ?? '';
  const handler = has(ACTIONS, action) ? ACTIONS[action] : undefined;
  const shape = has(INPUT_SHAPES, action) ? INPUT_SHAPES[action] : undefined;
  if (!handler || !shape)
    throw new Ec2Error('InvalidAction', `The action ${action || '(none)'} is not valid for this web service.`);
  const version = params.get('Version');
  if (version === undefined || version === '')
    throw new Ec2Error('MissingParameter', 'The request must contain the parameter Version');
  if (!VERSIONS.has(version))
    throw new Ec2Error('NoSuchVersion', `The requested version (${version}) of service AmazonEC2 does not exist`);
  if (version < (FIRST_VERSION[action] ?? '')) {
    throw new Ec2Error('InvalidAction', `The action ${action} is not valid for this web service.`);
  }
  checkParams(params, shape);
  return { action, handler, version };
}
