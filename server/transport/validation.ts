import type * as z from 'zod';
import { HubError, type ErrorIssue } from '../../shared/errors.ts';

/**
 * Issues an answer lists at most. A payload under maxHttpBufferSize can hold hundreds of thousands
 * of wrong values, an issue each: listed whole, half a megabyte of request made a 20 MB answer.
 */
export const MAX_ISSUES = 100;
/** Characters of an issue's message kept: zod names every unknown key of an object in one. */
const MAX_MESSAGE = 1000;

/** `message` cut to MAX_MESSAGE characters, or one fewer where the cut would split a surrogate pair (an emoji). */
function bounded(message: string): string {
  if (message.length <= MAX_MESSAGE) return message;
  const end = /[\uD800-\uDBFF]/.test(message[MAX_MESSAGE - 1]!) ? MAX_MESSAGE - 1 : MAX_MESSAGE;
  return `${message.slice(0, end)}…`;
}

/**
 * A VALIDATION error for `what` (a payload, a query): its first MAX_ISSUES issues in `issues`, the
 * first ones in words in the message with the count of the rest; with `stopped`, the check stopped
 * at its first issues and the message says why instead of a count.
 */
export function validationError(what: string, error: z.ZodError, stopped?: string): HubError {
  const all = error.issues;
  const issues: ErrorIssue[] = all.slice(0, MAX_ISSUES).map((issue) => ({ path: issue.path.map((p) => (typeof p === 'number' ? p : String(p))), message: bounded(issue.message) }));
  const shown = issues.slice(0, 3).map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(payload)'}: ${issue.message}`);
  const rest = stopped !== undefined ? `; ${stopped}` : all.length > 3 ? `; and ${all.length - 3} more` : '';
  return new HubError('VALIDATION', `invalid ${what}: ${shown.join('; ')}${rest}`, issues);
}

/**
 * Payloads of more values than this are answered with the issues found until the check stopped
 * (see checkPayload); smaller ones with all their issues. Listing every issue costs zod several
 * microseconds each, so this bounds that to a few tens of milliseconds.
 */
export const FULLY_CHECKED_VALUES = 5000;

// zod's own switch (what `z.validate` uses): an array or object stops at its first wrong child.
// Not in its public ParseContext type, hence the cast.
const STOP_AT_FIRST = { abortEarly: true } as z.core.ParseContext<z.core.$ZodIssue>;

/**
 * `payload` parsed by `schema`, or a VALIDATION error for `what`. The payload is checked once with
 * zod stopping at its first wrong value, since collecting every issue of a hostile payload near
 * maxHttpBufferSize held the event loop for a second; a payload found wrong is checked again in
 * full, for all its issues, only when it holds at most FULLY_CHECKED_VALUES values.
 */
export function checkPayload<S extends z.ZodType>(what: string, schema: S, payload: unknown): { ok: true; data: z.output<S> } | { ok: false; error: HubError } {
  const first = schema.safeParse(payload, STOP_AT_FIRST);
  if (first.success) return { ok: true, data: first.data };
  if (valuesWithin(payload, FULLY_CHECKED_VALUES)) {
    const full = schema.safeParse(payload);
    // zod stops only after an issue, so this fails too; were it not to, the first answer stands.
    if (!full.success) return { ok: false, error: validationError(what, full.error) };
  }
  return { ok: false, error: validationError(what, first.error, `checking stopped there (over ${FULLY_CHECKED_VALUES} values)`) };
}

/** True when `value` holds at most `max` values (itself, items, keys' values, at any depth); stops counting past `max`. */
function valuesWithin(value: unknown, max: number): boolean {
  let left = max;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const next = stack.pop();
    if (--left < 0) return false;
    if (Array.isArray(next)) {
      if (next.length > left) return false;
      for (const item of next) stack.push(item);
    } else if (next !== null && typeof next === 'object') {
      // for-in, not Object.values: that would copy every value of a wide object first.
      let count = 0;
      for (const key in next) {
        if (++count > left) return false;
        stack.push((next as Record<string, unknown>)[key]);
      }
    }
  }
  return true;
}
