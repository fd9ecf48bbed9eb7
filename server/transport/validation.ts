import type * as z from 'zod';
import { HubError, type ErrorIssue } from '../../shared/errors.ts';

/** A VALIDATION error for `what` (a payload, a query): every issue in `issues`, the first ones in words in the message. */
export function validationError(what: string, error: z.ZodError): HubError {
  const issues: ErrorIssue[] = error.issues.map((issue) => ({ path: issue.path.map((p) => (typeof p === 'number' ? p : String(p))), message: issue.message }));
  const shown = issues.slice(0, 3).map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(payload)'}: ${issue.message}`);
  return new HubError('VALIDATION', `invalid ${what}: ${shown.join('; ')}${issues.length > 3 ? `; and ${issues.length - 3} more` : ''}`, issues);
}
