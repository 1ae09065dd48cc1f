// Structured logs: one JSON object per line on stdout (pino). Child loggers
// carry context such as the fan or the worker.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function makeLogger(level: LevelWithSilent = 'info'): Logger {
  // Synchronous destination: a daemon that dies must not lose its last words.
  return pino({ name: 'fand', level, base: { pid: process.pid } }, pino.destination({ dest: 1, sync: true }));
}
