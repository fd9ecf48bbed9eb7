import type { Connection } from '../../client-sdk/connection.ts';
import type { NamespaceName } from '../../shared/contract.ts';

/** The events a client's connection sends from now on, in order (the requests still go to the hub). */
export function recordRequests<N extends NamespaceName>(connection: Connection<N>): string[] {
  const sent: string[] = [];
  const request = connection.request.bind(connection);
  connection.request = ((...args: Parameters<typeof request>) => {
    sent.push(args[0]);
    return request(...args);
  }) as typeof request;
  return sent;
}
