import type { ClusterInfo } from '../cluster/cluster-node.ts';
import type { Route } from './router.ts';

/** `GET /cluster`: this node, its role, the leader it knows, the epoch and the version it holds (any token). */
export function clusterRoute(info: () => ClusterInfo): Route {
  return { method: 'GET', pattern: /^\/cluster$/, roles: ['admin', 'monitor', 'agent'], handle: () => ({ body: info() }) };
}
