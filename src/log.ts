// Logs (pino). Two forms of the same records:
//  - text, for a person at a terminal: pino-pretty, one line per record with
//    a local ISO 8601 time and the level in words;
//  - json, for journald, files and log shippers: one JSON object per line,
//    `time` in ISO 8601 UTC, `level` as pino's number (what pino-pretty and
//    the rest of pino's tools read back).
// The default is text when the log's file descriptor is a terminal, json
// otherwise (a pipe, a file, the journal). Child loggers carry context such
// as the fan or the worker.
//
// Both forms write synchronously: a daemon that dies must not lose its last
// words (pino-pretty runs as a synchronous stream in this thread, not as a
// transport worker).
import { createRequire } from 'node:module';
import { isatty } from 'node:tty';
import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LogOptions {
  /** Undefined: text when `fd` is a terminal, json otherwise. */
  readonly format?: LogFormat;
  /** 1 (stdout, the daemon's) or 2 (stderr: commands whose stdout is their result). */
  readonly fd?: 1 | 2;
}

/** Text on a terminal, JSON anywhere else. */
export function defaultLogFormat(fd: number): LogFormat {
  return isatty(fd) ? 'text' : 'json';
}

/**
 * The text form's time: local, ISO 8601 with milliseconds and the UTC offset
 * (dateformat's mask, as pino-pretty's translateTime takes it).
 */
export const TEXT_TIME = "SYS:yyyy-mm-dd'T'HH:MM:ss.lp";

function textStream(fd: 1 | 2): DestinationStream {
  // pino-pretty is CommonJS and only needed for text: loaded on demand.
  const pretty = createRequire(import.meta.url)('pino-pretty') as (o: object) => DestinationStream;
  return pretty({
    destination: fd,
    sync: true,
    colorize: isatty(fd) && process.env['NO_COLOR'] === undefined,
    translateTime: TEXT_TIME,
    ignore: 'pid,hostname,name',
    singleLine: true,
  });
}

export function makeLogger(level: LevelWithSilent = 'info', opts: LogOptions = {}): Logger {
  const fd = opts.fd ?? 1;
  const format = opts.format ?? defaultLogFormat(fd);
  return pino(
    { name: 'fand', level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    format === 'text' ? textStream(fd) : pino.destination({ dest: fd, sync: true }),
  );
}
