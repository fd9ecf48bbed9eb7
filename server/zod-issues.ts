import * as z from 'zod';

/**
 * A zod error's issues on one line, each after where it is (`port: Too big: ...; rateLimit.burst: ...`):
 * the CLI says why it stopped in one line, and a log keeps it as one.
 */
export function issuesText(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.length ? `${z.core.toDotPath(issue.path)}: ` : ''}${issue.message}`).join('; ');
}
