import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = Pick<PinoLogger, 'debug' | 'info' | 'warn' | 'error' | 'child'>;
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** A structured logger: JSON lines on stdout (or the given stream), at `level`. */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  return pino({ level, base: { service: 'switchboard' } }, destination ?? pino.destination({ fd: 1, sync: false }));
}
