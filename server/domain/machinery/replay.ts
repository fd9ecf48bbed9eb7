import { fromPointer, type PatchOp } from '../../../shared/patch.ts';
import type { WorkOrder } from '../../../shared/schemas/work-order.ts';
import { AGENTS_DOC, docRoot, type DocKey, type HubState } from './state.ts';
import { Transaction } from './transaction.ts';

/** One document's part of a committed record, as the journal holds it. */
export interface CommittedChange {
  doc: DocKey;
  /** The document's version after the change. */
  v: number;
  ops: readonly PatchOp[];
}

/**
 * Applies a record another writer committed to a live state (a follower's replica): every write
 * goes through a Transaction, so readers holding a document at an earlier version (pins) keep it,
 * and versions end at the record's. The read indexes follow: order lists and catalogs are told of
 * added orders and state moves, and a workflow's data indexes are dropped when its data changes
 * (each is rebuilt when next read). The scheduler's index is not kept: a follower schedules
 * nothing, and promotion rebuilds it. Throws when an op does not fit the state (a replica that
 * drifted must be loaded again).
 */
export function replayChanges(state: HubState, changes: readonly CommittedChange[]): void {
  const tx = new Transaction(state);
  for (const change of changes) {
    if (change.doc === AGENTS_DOC) {
      for (const op of change.ops) replayAgentOp(state, tx, op);
    } else {
      replayWorkflow(state, tx, change);
    }
    if (docRoot(state, change.doc) === undefined) state.versions.delete(change.doc);
    else state.versions.set(change.doc, change.v);
  }
}

/** Applies an op of the agent pool, keeping the ids its pages are read from. */
function replayAgentOp(state: HubState, tx: Transaction, op: PatchOp): void {
  const path = fromPointer(op.path);
  applyOp(state, tx, AGENTS_DOC, op, path);
  const ids = state.work.agentIds;
  if (path.length === 0) ids.rebuild(Object.keys(state.agents ?? {}));
  else if (path.length === 1 && op.op === 'add') ids.add(path[0]!);
  else if (path.length === 1 && op.op === 'remove') ids.remove(path[0]!);
}

/** The segments of an order's path: `/workOrders/<id>[/field…]`, else undefined. */
function orderPath(path: readonly string[]): { id: string; field: string | undefined } | undefined {
  return path.length >= 2 && path[0] === 'workOrders' ? { id: path[1]!, field: path[2] } : undefined;
}

function replayWorkflow(state: HubState, tx: Transaction, change: CommittedChange): void {
  const id = change.doc;
  const work = state.work;
  for (const op of change.ops) {
    const path = fromPointer(op.path);
    if (path.length === 0) {
      // The whole document came, went or was replaced: every index of it is built again when read.
      work.orderLists.forget(id);
      work.catalogs.forget(id);
      state.inventory.forget(id);
      applyOp(state, tx, id, op, path);
      continue;
    }
    const workflow = state.workflows.get(id);
    const at = orderPath(path);
    if (at && (at.field === undefined || (at.field === 'state' && path.length === 3))) {
      const before = workflow?.workOrders[at.id]?.state;
      applyOp(state, tx, id, op, path);
      const order = state.workflows.get(id)?.workOrders[at.id];
      noteOrder(state, id, order, before);
      continue;
    }
    if (path[0] === 'data' || path[0] === 'lineage') {
      state.inventory.forget(id);
      if (path[0] === 'data' && path.length === 2 && op.op === 'add') work.catalogs.dataAdded(id);
    }
    applyOp(state, tx, id, op, path);
  }
}

/** Tells the order list and catalog of a workflow about an order added, moved or removed. */
function noteOrder(state: HubState, workflowId: string, order: WorkOrder | undefined, before: WorkOrder['state'] | undefined): void {
  const work = state.work;
  if (!order) {
    // Orders are never removed by the domain; should one go, its lists are simply built again.
    work.orderLists.forget(workflowId);
    work.catalogs.forget(workflowId);
    return;
  }
  if (before === undefined) {
    work.orderLists.added(workflowId, order.id);
    work.catalogs.added(order);
  } else if (before !== order.state) {
    work.catalogs.moved(order, before, order.state);
  }
}

/** Applies one op through the transaction (so pins are told and the version moves). */
function applyOp(state: HubState, tx: Transaction, doc: DocKey, op: PatchOp, segments?: readonly string[]): void {
  const path = segments ?? fromPointer(op.path);
  if (path.length === 0) {
    if (op.op === 'remove') tx.dropDoc(doc);
    else tx.putDoc(doc, op.value as object);
    return;
  }
  if (op.op === 'remove') return tx.remove(doc, path);
  const parentPath = path.slice(0, -1);
  const parent = containerAt(docRoot(state, doc), parentPath);
  if (Array.isArray(parent) && op.op === 'add') {
    const last = path[path.length - 1]!;
    if (last !== '-' && Number(last) !== parent.length) throw new Error(`cannot insert inside an array: ${op.path}`);
    return tx.append(doc, parentPath, op.value);
  }
  tx.set(doc, path, op.value);
}

/** The object or array at `path`, or undefined. */
function containerAt(root: unknown, path: readonly string[]): unknown {
  let node = root;
  for (const segment of path) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, segment)) return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}
