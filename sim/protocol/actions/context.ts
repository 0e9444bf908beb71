/** What every action handler gets: the parsed parameters, the model, and the region. */
import type { SimConfig } from '../../config';
import type { Ec2Model } from '../../model/ec2-model';
import { Ec2Error } from '../../model/errors';
import type { QueryParams } from '../query';

export interface ActionContext {
  params: QueryParams;
  model: Ec2Model;
  region: string;
  config: SimConfig;
}

export type ActionHandler = (ctx: ActionContext) => Record<string, unknown>;

/** DryRun=true: the request is valid and allowed, and nothing happens (EC2 answers 412). */
export function dryRunGate(ctx: ActionContext): void {
  if (ctx.params.bool('DryRun'))
    throw new Ec2Error('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.');
}
