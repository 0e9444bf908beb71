/** The option parsers and declarations several commands share, so a flag reads and checks the same everywhere. */
import { InvalidArgumentError } from 'commander';
import type { ArgumentSpec, OptionSpec } from './commands/command';

export const positiveInt =
  (flag: string) =>
  (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1) throw new InvalidArgumentError(`${flag} must be a whole number of at least 1`);
    return n;
  };

/** `--max-api-rate`: requests per second (> 0), or `default` to remove the budget. */
export const parseApiRate = (value: string): number | 'default' => {
  if (value === 'default') return 'default';
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError('give requests per second (> 0), or "default" to remove the budget');
  }
  return n;
};

export const percentage = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) {
    throw new InvalidArgumentError('must be a percentage from 0 to 100');
  }
  return n;
};

export const BATCH_ARGUMENT: ArgumentSpec = { name: 'batch', description: 'batch name' };
export const CSV_ARGUMENT: ArgumentSpec = { name: 'csv', description: 'inventory CSV' };

export const jsonOption = (description = 'machine-readable output'): OptionSpec => ({ flags: '--json', description });
