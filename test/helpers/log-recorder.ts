import { Writable } from 'node:stream';
import { createLogger, type Logger, type LogLevel } from '../../server/logger.ts';

/** One line of the hub's log as a pino JSON line: level (20 debug, 30 info, 40 warn, 50 error), msg and fields. */
export interface LogEntry {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** The pino number of a level name. */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/** A logger that keeps every line it writes, raw and parsed, and can wait for one. */
export interface LogRecorder {
  logger: Logger;
  /** Every line as written (JSON text). */
  lines: string[];
  entries: LogEntry[];
  /** The entries with this message (and these field values). */
  find(msg: string, fields?: Record<string, unknown>): LogEntry[];
  /** Resolves with the first entry with this message (and fields), written or to come; rejects after `timeoutMs`. */
  until(msg: string, fields?: Record<string, unknown>, timeoutMs?: number): Promise<LogEntry>;
}

/** A recording logger at `level` (debug by default). */
export function logRecorder(level: LogLevel = 'debug'): LogRecorder {
  const lines: string[] = [];
  const entries: LogEntry[] = [];
  const waiting = new Set<() => void>();
  const matches = (entry: LogEntry, msg: string, fields: Record<string, unknown>) =>
    entry.msg === msg && Object.entries(fields).every(([key, value]) => entry[key] === value);
  const find = (msg: string, fields: Record<string, unknown> = {}) => entries.filter((entry) => matches(entry, msg, fields));
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        lines.push(line);
        entries.push(JSON.parse(line) as LogEntry);
      }
      for (const check of [...waiting]) check();
      done();
    },
  });
  const until = (msg: string, fields: Record<string, unknown> = {}, timeoutMs = 15_000) =>
    new Promise<LogEntry>((resolve, reject) => {
      const check = () => {
        const found = find(msg, fields)[0];
        if (!found) return;
        waiting.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        waiting.delete(check);
        reject(new Error(`no log line "${msg}" ${JSON.stringify(fields)} within ${timeoutMs} ms`));
      }, timeoutMs);
      waiting.add(check);
      check();
    });
  return { logger: createLogger(level, sink), lines, entries, find, until };
}
