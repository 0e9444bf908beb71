/**
 * Structured logs (pino): JSON lines with `--log-format json`, readable lines otherwise. The Temporal
 * runtime's logger feeds the same sink, so SDK, workflow and activity logs carry the workflow ID, and our
 * activities add batch and vm. Only keys, names and AWS IDs are ever logged.
 */
import type { LogLevel, LogMetadata, Logger } from '@temporalio/worker';
import pino from 'pino';

export type Pino = pino.Logger;

export function createLogger(level: string, format: 'json' | 'pretty'): Pino {
  if (format === 'json') return pino({ level, base: { service: 'vmconvoy' } });
  // A plain one-line format without a transport thread: `time level msg key=value...`.
  return pino({
    level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}

/**
 * VM workflows have IDs `<batch>/<vm>` and fleets `<batch>`; every line that names a workflow therefore
 * also gets `batch` and `vm` fields, so `jq 'select(.vm=="web-01")'` finds a VM's whole story.
 */
export function withBatchAndVm(meta?: LogMetadata): Record<string, unknown> {
  const fields: Record<string, unknown> = { ...(meta ?? {}) };
  const workflowId = typeof fields.workflowId === 'string' ? fields.workflowId : undefined;
  if (workflowId && !workflowId.startsWith('vmconvoy-quota/')) {
    const slash = workflowId.lastIndexOf('/');
    fields.batch ??= slash >= 0 ? workflowId.slice(0, slash) : workflowId;
    if (slash >= 0) fields.vm ??= workflowId.slice(slash + 1);
  }
  return fields;
}

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** Adapts pino to the Temporal runtime's Logger interface, lifting batch/vm out of workflow context. */
export class PinoTemporalLogger implements Logger {
  constructor(private readonly pino: Pino) {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    this.pino[LEVELS[level]](withBatchAndVm(meta), message);
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}
