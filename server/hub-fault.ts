import { HubError } from '../shared/errors.ts';

/**
 * An `INTERNAL` answer whose detail (a file's path on the hub's machine, what the disk said) is for
 * the operator's log only: every role may get the answer, monitors included.
 */
export class HubFault extends HubError {
  constructor(
    message: string,
    /** The whole story, as the hub's log tells it. */
    readonly detail: string,
  ) {
    super('INTERNAL', message);
  }
}

/** What the log says of an error answered `INTERNAL`: its detail when it is a HubFault. */
export const faultReason = (error: HubError): string => (error instanceof HubFault ? error.detail : error.message);
