import { io, type Socket } from 'socket.io-client';
import { onTestFinished } from 'vitest';
import type { NamespaceName } from '../../shared/contract.ts';
import { TOKENS } from './hub.ts';

/** The test token of each namespace's role. */
export const NAMESPACE_TOKEN: Record<NamespaceName, string> = { control: TOKENS.admin, agent: TOKENS.agent, monitor: TOKENS.monitor };

/** A bare socket.io connection to a namespace with its role's test token (no SDK, no reconnection), closed when the test ends. */
export function connectRaw(url: string, namespace: NamespaceName): Promise<Socket> {
  const socket = io(`${url}/${namespace}`, { auth: { token: NAMESPACE_TOKEN[namespace] }, transports: ['websocket'], forceNew: true, reconnection: false });
  onTestFinished(() => void socket.disconnect());
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}
