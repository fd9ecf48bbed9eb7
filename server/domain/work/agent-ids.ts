import { BTree } from '../machinery/sorted-tree.ts';

/**
 * The ids of the agents in the pool, sorted (by UTF-16 code units), so that a page of agent.list
 * starts at its cursor instead of listing the whole pool. Kept up to date where an agent joins or
 * is forgotten, each change with its undo; rebuilt with the scheduler's index.
 */
export class AgentIds {
  private readonly tree = new BTree<string, undefined>();

  /** Adds an agent that joined the pool; returns what takes it out again. */
  add(agentId: string): () => void {
    if (!this.tree.set(agentId, undefined)) return () => undefined;
    return () => void this.tree.delete(agentId);
  }

  /** Takes out an agent the pool forgot; returns what puts it back. */
  remove(agentId: string): () => void {
    if (!this.tree.delete(agentId)) return () => undefined;
    return () => void this.tree.set(agentId, undefined);
  }

  /** The ids after `cursor` (from the first without one), in order. */
  *after(cursor: string | undefined): Generator<string, void, undefined> {
    const ids = this.tree.keys(cursor);
    let next = ids.next();
    if (cursor !== undefined && next.value === cursor) next = ids.next();
    for (; !next.done; next = ids.next()) yield next.value;
  }

  /** Holds exactly these ids. */
  rebuild(agentIds: Iterable<string>): void {
    this.tree.clear();
    for (const id of agentIds) this.tree.set(id, undefined);
  }
}
