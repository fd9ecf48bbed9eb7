/** The closed list of error codes a request can fail with, and what each one means. */
export const ERROR_CODES = {
  VALIDATION: 'The payload does not match the event schema; `issues` says where.',
  NOT_FOUND: 'The workflow, work order or other entity named in the request does not exist.',
  INVALID_TRANSITION: 'The entity is in a state that does not allow this change.',
  STALE_ATTEMPT: 'The attempt token is not the current attempt of the work order (lease lost or reassigned).',
  FORBIDDEN: 'The token is valid but its role or scope does not allow this request.',
  UNAUTHENTICATED: 'No token, or an unknown one.',
  CONFLICT: 'The entity already exists, or the request contradicts the current state (e.g. a dependency cycle).',
  RATE_LIMITED: 'Too many requests on this connection, or too many unknown tokens from this address; retry after a pause.',
  UNAVAILABLE: 'The hub cannot accept changes right now (storage failure or shutting down). Nothing was changed.',
  TIMEOUT: 'The request or the peer did not answer in time.',
  DISCONNECTED: 'The client has no connection to the hub (it could not connect, or the connection dropped); a request sent before the drop may or may not have taken effect.',
  INTERNAL: 'An unexpected error in the hub. Nothing was changed.',
  NOT_LEADER: 'This node of a cluster is a follower: it refuses /control and /agent connections; connect to `leader.url`, given in the refusal.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** One problem found in a payload: where it is and what is wrong. */
export interface ErrorIssue {
  path: Array<string | number>;
  message: string;
}

/** An ended attempt of a work order: a STALE_ATTEMPT refusal lists the reporting agent's, so that it can tell whether its own report landed. */
export interface EndedAttempt {
  number: number;
  outcome: string;
}

/** The error carried by a failed ack, and thrown by the SDK with the same `code`. */
export class HubError extends Error {
  override readonly name = 'HubError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly issues?: ErrorIssue[],
    readonly attempts?: EndedAttempt[],
  ) {
    super(message);
  }

  /** The plain JSON form sent on the wire. */
  toJSON(): { code: ErrorCode; message: string; issues?: ErrorIssue[]; attempts?: EndedAttempt[] } {
    return { code: this.code, message: this.message, ...(this.issues ? { issues: this.issues } : {}), ...(this.attempts ? { attempts: this.attempts } : {}) };
  }
}

/** True when `code` is one of the documented error codes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}
