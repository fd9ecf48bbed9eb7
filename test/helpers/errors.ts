import { HubError } from '../../shared/errors.ts';

/** The code of the HubError a promise rejects with, or 'resolved' when it does not reject. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return error instanceof HubError ? error.code : `not a HubError: ${String(error)}`;
  }
  return 'resolved';
}

/** The code of the HubError a function throws, or undefined when it does not throw. */
export function codeOfCall(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof HubError ? error.code : `not a HubError: ${String(error)}`;
  }
  return undefined;
}

/** The HubError a promise rejects with; throws (failing the test) when it resolves or rejects with something else. */
export async function hubErrorOf(promise: Promise<unknown>): Promise<HubError> {
  const outcome = await promise.then(
    () => 'resolved',
    (error: unknown) => error,
  );
  if (outcome instanceof HubError) return outcome;
  throw new Error(`expected a HubError, got ${outcome === 'resolved' ? 'success' : String(outcome)}`);
}
