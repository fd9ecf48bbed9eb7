import { io } from 'socket.io-client';
import { leaderOf, type ConnectFailure } from '../../../client-sdk/connect-error.ts';

/** How long the search may take: a cluster elects its first leader within a lease. */
const FIND_LEADER_MS = 30_000;

/**
 * The URL, among a cluster's `urls`, of the node that serves `namespace` (the leader), found as
 * PROTOCOL.md tells a bare socket.io client to: connect to each node in turn and follow a
 * follower's NOT_LEADER refusal to the leader it names. One URL is returned as it is.
 */
export async function findLeader(urls: string | readonly string[], namespace: string, token: string): Promise<string> {
  if (typeof urls === 'string') return urls;
  if (urls.length === 1) return urls[0]!;
  const deadline = performance.now() + FIND_LEADER_MS;
  let next = 0;
  let url = urls[0]!;
  for (let pauseMs = 100; ; pauseMs = Math.min(pauseMs * 2, 1000)) {
    const outcome = await tryNode(url, namespace, token);
    if (outcome === true) return url;
    if (performance.now() > deadline) throw new Error(`no node of ${urls.join(', ')} served ${namespace} within ${FIND_LEADER_MS} ms`);
    const named = outcome?.url;
    if (named && named !== url) {
      url = named;
      continue;
    }
    next = (next + 1) % urls.length;
    url = urls[next]!;
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
}

/** true: the node took the connection; a leader it named instead, null for none, or undefined for another failure. */
function tryNode(url: string, namespace: string, token: string): Promise<true | { url: string } | null | undefined> {
  return new Promise((resolve) => {
    const socket = io(new URL(namespace, url).href, { auth: { token }, transports: ['websocket'], forceNew: true, reconnection: false, timeout: 5000 });
    socket.once('connect', () => {
      socket.disconnect();
      resolve(true);
    });
    socket.once('connect_error', (error: ConnectFailure) => {
      socket.disconnect();
      resolve(leaderOf(error));
    });
  });
}
