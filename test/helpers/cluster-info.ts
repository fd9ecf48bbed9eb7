import type { ClusterInfo } from '../../server/index.ts';

/**
 * What a node answers at GET /cluster with `token` (any role), or undefined when it does not
 * answer (down, or frozen). Free of vitest: the bench uses it too.
 */
export async function clusterInfo(url: string, token: string, timeoutMs = 1000): Promise<ClusterInfo | undefined> {
  try {
    const reply = await fetch(`${url}/cluster`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(timeoutMs) });
    return reply.ok ? ((await reply.json()) as ClusterInfo) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The index in `urls` of the one node that says it leads, once one does and every other node
 * that answers names it as its leader. `urls[i]` undefined: node i is not running, not asked.
 */
export async function untilOneLeader(urls: ReadonlyArray<string | undefined>, token: string, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const infos = await Promise.all(urls.map((url) => (url ? clusterInfo(url, token) : undefined)));
    const leading = infos.flatMap((info, i) => (info?.role === 'leader' ? [i] : []));
    if (leading.length === 1) {
      const nodeId = infos[leading[0]!]!.nodeId;
      if (infos.every((info) => !info || info.leader?.nodeId === nodeId)) return leading[0]!;
    }
    if (Date.now() > deadline) throw new Error(`no single leader within ${timeoutMs} ms: ${JSON.stringify(infos)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
