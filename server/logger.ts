import { Writable } from 'node:stream';
import { pino, type Logger as PinoLogger } from 'pino';
import { printable } from '../shared/printable.ts';

export type Logger = Pick<PinoLogger, 'debug' | 'info' | 'warn' | 'error' | 'child'>;
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };

/** Turns pino's JSON lines into `12:01:02 INFO  message key=value` for a person at a terminal (`out`: stdout, or a test's sink). */
export function readableLines(out: { write(text: string): unknown }): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        const record = JSON.parse(line) as Record<string, unknown>;
        const { level, time, msg, err } = record;
        const fields = Object.entries(record).filter(([key]) => !['level', 'time', 'msg', 'err', 'service', 'pid', 'hostname'].includes(key));
        // A client's text (a pause's reason, an agent's error) is printed as text: its escape sequences would reach the terminal.
        const extra = fields.map(([k, v]) => `${k}=${typeof v === 'string' ? printable(v) : JSON.stringify(v)}`);
        const error = err ? `\n  ${(err as { stack?: string }).stack ?? JSON.stringify(err)}` : '';
        out.write(`${new Date(time as number).toISOString().slice(11, 19)} ${LEVELS[level as number] ?? level} ${printable(String(msg ?? ''))}${extra.length ? '  ' + extra.join(' ') : ''}${error}\n`);
      }
      done();
    },
  });
}

/**
 * A structured logger at `level`: JSON lines on stdout when it is not a terminal (for log
 * shippers), readable lines when a person is watching; or the given stream.
 */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  const stream = destination ?? (process.stdout.isTTY ? readableLines(process.stdout) : pino.destination({ fd: 1, sync: false }));
  return pino({ level, base: { service: 'switchboard' } }, stream);
}
