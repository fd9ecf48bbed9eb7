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

/** A VALIDATION error for `what` (a payload, a query): its first MAX_ISSUES issues in `issues`, the first ones in words in the message with the count of the rest. */
export function validationError(what: string, error: z.ZodError): HubError {
  const all = error.issues;
  const issues: ErrorIssue[] = all.slice(0, MAX_ISSUES).map((issue) => ({ path: issue.path.map((p) => (typeof p === 'number' ? p : String(p))), message: bounded(issue.message) }));
  const shown = issues.slice(0, 3).map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(payload)'}: ${issue.message}`);
  return new HubError('VALIDATION', `invalid ${what}: ${shown.join('; ')}${all.length > 3 ? `; and ${all.length - 3} more` : ''}`, issues);
}
