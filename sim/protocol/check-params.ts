/**
 * Checks a request's parameters against the action's input shape, as EC2 does before it acts: a name the
 * action does not take (misspelt, or from another action) → 400 `UnknownParameter` "The parameter X is not
 * recognized" (aws/aws-cli#21, aws/aws-sdk-js#57); a required member missing → `MissingParameter`; a
 * boolean or number that is not one → `InvalidParameterValue`. Nothing is defaulted here.
 */
import { Ec2Error } from '../model/errors';
import type { Shape } from './input-shapes';
import { COMMON_PARAMETERS } from './input-shapes';
import type { QueryParams } from './query';

const unknown = (name: string): Ec2Error => new Ec2Error('UnknownParameter', `The parameter ${name} is not recognized`);

function checkScalar(name: string, value: string, kind: 'string' | 'boolean' | 'integer'): void {
  if (kind === 'boolean' && value !== 'true' && value !== 'false') {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Value (${value}) for parameter ${name} is invalid. Expected: 'true' or 'false'.`
    );
  }
  if (kind === 'integer' && !/^-?\d+$/.test(value)) {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Value (${value}) for parameter ${name} is invalid. Expected a number.`
    );
  }
}

/** Walks one parameter name down the shape; records each structure it passes through (by prefix). */
function walk(name: string, value: string, root: Shape, structs: Map<string, Shape & { kind: 'struct' }>): void {
  const segments = name.split('.');
  let shape: Shape = root;
  let prefix = '';
  for (let i = 0; ; i++) {
    if (shape.kind === 'either') shape = i === segments.length ? shape.scalar : shape.struct;
    if (shape.kind === 'struct') {
      structs.set(prefix, shape);
      const segment = segments[i];
      const member =
        segment === undefined
          ? undefined
          : Object.prototype.hasOwnProperty.call(shape.members, segment)
            ? shape.members[segment]
            : undefined;
      if (!member) throw unknown(name);
      shape = member;
      prefix += `${segment}.`;
    } else if (shape.kind === 'list') {
      const segment = segments[i];
      if (segment === undefined || !/^[1-9]\d*$/.test(segment)) throw unknown(name);
      shape = shape.member;
      prefix += `${segment}.`;
    } else {
      if (i !== segments.length || shape.kind === 'either') throw unknown(name);
      checkScalar(name, value, shape.kind);
      return;
    }
  }
}

export function checkParams(params: QueryParams, shape: Shape & { kind: 'struct' }): void {
  const structs = new Map<string, Shape & { kind: 'struct' }>([['', shape]]);
  const names = params.keys().filter((k) => !COMMON_PARAMETERS.has(k));
  for (const name of names) walk(name, params.get(name) ?? '', shape, structs);
  for (const [prefix, struct] of structs) {
    for (const member of struct.required) {
      const full = `${prefix}${member}`;
      if (!names.some((n) => n === full || n.startsWith(`${full}.`))) {
        throw new Ec2Error('MissingParameter', `The request must contain the parameter ${full}`);
      }
    }
  }
}
