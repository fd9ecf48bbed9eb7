import { HubError } from '../shared/errors.ts';

/** The longest delay setTimeout keeps: a longer one (Infinity included) fires after 1 ms instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay setTimeout honours: a longer one waits about 24.8 days, as good as forever here. */
export function timerMs(ms: number): number {
  return Math.min(ms, MAX_TIMER_MS);
}

/** `value` if it is a timeout (ms, 0 or more; Infinity: no limit), else a VALIDATION error naming `name`; `fallback` when unset. */
export function checkedTimeout(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new HubError('VALIDATION', `${name} must be a number of milliseconds, 0 or more (Infinity: no limit); got ${String(value)}`);
  }
  return value;
}
