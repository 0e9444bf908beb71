/**
 * Every `vmconvoy` command, in the order `vmconvoy --help` lists them: first the work on batches, then the
 * processes (worker, simulator, codec server, local environment).
 */
import { cancelSpec } from './cancel';
import { codecServerSpec } from './codec-server';
import type { AnyCommand, CommandSpec } from './command';
import { devSpec } from './dev';
import { pauseSpec } from './pause';
import { planSpec } from './plan';
import { reportSpec } from './report';
import { resumeSpec } from './resume';
import { retrySpec } from './retry';
import { rollbackSpec } from './rollback';
import { setLimitsSpec } from './set-limits';
import { setupSpec } from './setup';
import { simCommand } from './sim';
import { startSpec } from './start';
import { statusSpec } from './status';
import { validateSpec } from './validate';
import { workerSpec } from './worker';

/**
 * The simulator parses its own command line (sim/main.ts), --help included, and keeps serving after its
 * action returns. Declared here rather than in sim.ts, which belongs to the simulator's side.
 */
const simSpec: CommandSpec = {
  name: 'sim',
  summary:
    'run the EC2 VM-Import simulator (its flags: --port --host --state --access-key --secret-key --region --config --profile; vmconvoy sim --help)',
  examples: ['vmconvoy sim --port 4566 --state .vmconvoy/sim-state.json'],
  passThrough: true,
  servesAfterAction: true,
  run: ({ args }) => simCommand(args),
};

export const COMMANDS: readonly AnyCommand[] = [
  validateSpec,
  planSpec,
  startSpec,
  statusSpec,
  pauseSpec,
  resumeSpec,
  cancelSpec,
  retrySpec,
  setLimitsSpec,
  reportSpec,
  rollbackSpec,
  setupSpec,
  workerSpec,
  simSpec,
  codecServerSpec,
  devSpec,
];
