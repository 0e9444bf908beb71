/**
 * What a command declares about itself: its name, one-line summary, arguments, options (with their
 * parsers), examples, and an action that returns a value; and how a declaration becomes a commander
 * command. run-command.ts runs it: the value is printed by the printer through the command's view (text,
 * or --json), a batch it started may be followed, and `exit` picks the exit code.
 */
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { Option } from 'commander';
import type { BatchView } from '../batch-view';
import type { CliConnection } from '../connect';
import type { ExitError } from '../errors';
import type { Printer, View } from '../output/printer';

export interface ArgumentSpec {
  /** Shown as `<name>`; every argument is required. */
  name: string;
  description: string;
}

export interface OptionSpec {
  /** As commander spells them: `--max-uploads <n>`, `--dry-run`, `--no-worker`. */
  flags: string;
  description: string;
  /** Turns the text into the value (throws InvalidArgumentError when it is not valid). */
  parse?: (value: string) => unknown;
  choices?: readonly string[];
  default?: string | number;
  /** The value of an optional option-argument (`--notify [receiver]`) when the option is given without one. */
  preset?: string;
  required?: boolean;
}

/** One invocation: the positional arguments and the parsed options. */
export interface Call<O> {
  args: string[];
  opts: O;
}

export interface CommandContext {
  /** The effective environment (env.json applied). */
  env: NodeJS.ProcessEnv;
  printer: Printer;
  /** The Temporal connection, opened on first use and closed when the command ends. */
  connection: () => Promise<CliConnection>;
  client: () => Promise<Client>;
}

/** A batch to follow until it ends, once the result is printed (start --wait, status --watch). */
export interface Follow {
  batch: string;
  intervalMs: number;
}

export interface CommandSpec<O extends object = object, R = unknown> {
  name: string;
  /** Lower case, no final full stop; the one line `vmconvoy --help` shows. */
  summary: string;
  arguments?: readonly ArgumentSpec[];
  options?: readonly OptionSpec[];
  /** Full command lines, each shown after `$ ` in --help; at least one. */
  examples: readonly string[];
  /** More help after the examples. */
  notes?: string;
  /**
   * Everything after the name, --help included, goes to the command's own parser (the simulator's): commander
   * neither parses nor answers it.
   */
  passThrough?: boolean;
  /** The action starts a server that outlives it: the process ends when the server stops it, not before. */
  servesAfterAction?: boolean;
  /** Does the work; the value returned is the result printed (nothing when undefined). */
  run(call: Call<O>, ctx: CommandContext): Promise<R>;
  /** How the result reads; without one the command prints nothing of its own. */
  view?: View<Exclude<R, undefined>, Call<O>>;
  follow?(result: R, call: Call<O>): Follow | undefined;
  /** A non-zero exit once everything is printed (the result and what was followed). */
  exit?(result: R, call: Call<O>, followed: BatchView | undefined): ExitError | undefined;
}

/** Any command, as the registry holds them. */
export type AnyCommand = CommandSpec<object, unknown>;

function commanderOption(spec: OptionSpec): Option {
  const option = new Option(spec.flags, spec.description);
  if (spec.parse) option.argParser(spec.parse);
  if (spec.choices) option.choices(spec.choices);
  if (spec.default !== undefined) option.default(spec.default);
  if (spec.preset !== undefined) option.preset(spec.preset);
  if (spec.required) option.makeOptionMandatory();
  return option;
}

/** `Example:` and one `$ command` line per example, as every --help ends. */
export const examplesHelp = (lines: readonly string[]): string =>
  `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  $ ${l}`).join('\n')}`;

/** Adds the declared command to the program; `action` runs it with what was typed. */
export function addCommand(program: Command, spec: AnyCommand, action: (call: Call<object>) => Promise<void>): void {
  const command = program.command(spec.name).description(spec.summary);
  for (const argument of spec.arguments ?? []) command.argument(`<${argument.name}>`, argument.description);
  for (const option of spec.options ?? []) command.addOption(commanderOption(option));
  // Everything after the name, --help too, reaches the command's own parser in order: once commander meets an
  // option it does not know, it leaves it and all that follows to the command.
  if (spec.passThrough) command.helpOption(false).allowUnknownOption().allowExcessArguments();
  command.addHelpText('after', `${examplesHelp(spec.examples)}${spec.notes ? `\n${spec.notes}` : ''}`);
  command.action((...params: unknown[]) => {
    const invoked = params.at(-1) as Command;
    return action({ args: invoked.args, opts: invoked.opts() });
  });
}
