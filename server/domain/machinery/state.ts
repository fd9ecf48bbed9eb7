import type { Agent } from '../../../shared/schemas/agent.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import { CreationOrder, type Created } from '../../../shared/creation-order.ts';
import { InventoryIndex } from '../data/inventory-index.ts';
import { countOrders } from '../work/order-lists.ts';
import { WorkIndex } from '../work/work-index.ts';
import { shareEmptyArrays } from './empty-array.ts';
import { ChangedItems } from './changed-items.ts';
import { Pins } from './pins.ts';

/** The key of the hub-wide agent pool document; workflow ids can never take this form. */
export const AGENTS_DOC = '@agents';

/** A document key: a workflow id, or AGENTS_DOC. */
export type DocKey = string;

/** A document and the version it is at, as stored in snapshots. */
export interface StoredDoc {
  v: number;
  doc: unknown;
}

/**
 * The hub's authoritative state: one document per workflow plus the agent pool, each versioned,
 * and the scheduler's index (runtime facts and what is derived from the documents).
 */
export interface HubState {
  workflows: Map<string, Workflow>;
  /** The workflows in memory in the order of workflow.list (creation, then id). */
  listed: CreationOrder<Created>;
  /** The `@agents` document; undefined until the first agent registers. */
  agents: Record<string, Agent> | undefined;
  versions: Map<DocKey, number>;
  work: WorkIndex;
  /** The indexes of each workflow's data inventory, for its reads. */
  inventory: InventoryIndex;
  /** Workflows that have ended and left memory for the store's archive: they can no longer change. */
  archived: ArchivedIds;
  /** Documents held at a version by readers that serialise them a piece at a time. */
  pins: Pins;
  /** Which items were written since the last snapshot was pinned. */
  changed: ChangedItems;
}

/** Which workflow ids are archived (the store's archive, or an empty set). */
export interface ArchivedIds {
  has(workflowId: string): boolean;
}

/** A state with no workflows and no agents. */
export function emptyState(agingMs = 60_000): HubState {
  return { workflows: new Map(), listed: new CreationOrder(), agents: undefined, versions: new Map(), work: new WorkIndex(agingMs), inventory: new InventoryIndex(), archived: new Set(), pins: new Pins(), changed: new ChangedItems() };
}

/** The root object of a document, or undefined when it does not exist. */
export function docRoot(state: HubState, key: DocKey): Record<string, unknown> | undefined {
  if (key === AGENTS_DOC) return state.agents;
  return state.workflows.get(key) as Record<string, unknown> | undefined;
}

/** Installs a whole document (creation, or loading from the store). */
export function putDoc(state: HubState, key: DocKey, doc: unknown): void {
  if (key === AGENTS_DOC) state.agents = doc as Record<string, Agent>;
  else {
    state.workflows.set(key, doc as Workflow);
    state.listed.put({ id: key, createdAt: (doc as Workflow).createdAt });
  }
}

/** Removes a whole document. */
export function dropDoc(state: HubState, key: DocKey): void {
  if (key === AGENTS_DOC) state.agents = undefined;
  else {
    state.workflows.delete(key);
    state.listed.remove(key);
  }
}

/** Builds the state from stored documents (snapshot plus replayed journal) and indexes it; `monotonicNow` as in `Environment`. */
export function stateFromDocs(docs: Map<DocKey, StoredDoc>, now: number, agingMs?: number, monotonicNow = now): HubState {
  const state = emptyState(agingMs);
  for (const [key, { v, doc }] of docs) {
    putDoc(state, key, doc);
    state.versions.set(key, v);
  }
  // Parsed orders have empty arrays of their own; copies made since share one (empty-array.ts).
  for (const workflow of state.workflows.values()) for (const order of Object.values(workflow.workOrders)) shareEmptyArrays(order as unknown as Record<string, unknown>);
  state.work.rebuild(state.workflows.values(), state.agents, now, monotonicNow);
  state.inventory.rebuild(state.workflows.values());
  return state;
}

/** The key of every document there is: each workflow, in creation order, then the agent pool. */
export function docKeys(state: HubState): DocKey[] {
  return state.agents ? [...state.workflows.keys(), AGENTS_DOC] : [...state.workflows.keys()];
}

/** Every document with its version, as a snapshot stores them (the objects are the live ones). */
export function storedDocs(state: HubState): Array<[DocKey, StoredDoc]> {
  return docKeys(state).map((key) => [key, { v: versionOf(state, key), doc: docRoot(state, key) }]);
}

/**
 * Whether the documents' JSON is at most about `bytes` long, which is what serialising them costs.
 * Estimated while walking them (see jsonSmallerThan), so asking costs O(bound + documents), never O(state).
 */
export function smallerThan(state: HubState, bytes: number): boolean {
  let left = bytes;
  for (const key of docKeys(state)) {
    left = jsonBytesLeft(docRoot(state, key), left);
    if (left < 0) return false;
  }
  return true;
}

/**
 * Whether `value`'s JSON is at most about `bytes` long: a string counts its length, a key and any
 * other value a few bytes. The walk stops at the bound, so it costs O(bound), never O(value),
 * except for the keys of an object it enters (see knownBytes).
 */
export function jsonSmallerThan(value: unknown, bytes: number): boolean {
  return jsonBytesLeft(value, bytes) >= 0;
}

/** About how many bytes `value`'s JSON holds (as jsonSmallerThan counts them), or undefined when over `bytes`. */
export function jsonBytesWithin(value: unknown, bytes: number): number | undefined {
  const left = jsonBytesLeft(value, bytes);
  return left >= 0 ? bytes - left : undefined;
}

/** Bytes an order's JSON holds at the least: its 32 field names alone take 330. */
const ORDER_BYTES_AT_LEAST = 300;

/** Whether a workflow's JSON is at most about `bytes` long; one with many orders is known not to be without a walk. */
export function workflowSmallerThan(workflow: Workflow, bytes: number): boolean {
  return countOrders(workflow) * ORDER_BYTES_AT_LEAST <= bytes && jsonSmallerThan(workflow, bytes);
}

/**
 * Objects whose JSON was found to exceed this many bytes. Entering an object with for…in lists all
 * its keys first (~25 ms for 100,000), however soon the walk stops: a later walk that would stop
 * there anyway stops without entering it. Collections only grow (orders, data, runs), so what
 * was once over a bound stays over it; were one to shrink, it is only taken for big a while.
 */
const knownBytes = new WeakMap<object, number>();

/** `left` minus the estimated JSON size of `value`, or a negative number as soon as that goes below 0. */
function jsonBytesLeft(value: unknown, start: number): number {
  let left = start;
  const within = (item: unknown): boolean => {
    if (typeof item === 'string') return (left -= item.length + 2) >= 0;
    if (typeof item !== 'object' || item === null) return (left -= 8) >= 0;
    if (Array.isArray(item)) {
      for (const element of item) if (!within(element)) return false;
      return (left -= 2) >= 0;
    }
    const known = knownBytes.get(item);
    if (known !== undefined && known > left) return (left = -1) >= 0;
    const entered = left;
    for (const key in item) {
      if ((left -= key.length + 4) < 0 || !within((item as Record<string, unknown>)[key])) {
        knownBytes.set(item, Math.max(known ?? 0, entered - left));
        return false;
      }
    }
    return (left -= 2) >= 0;
  };
  within(value);
  return left;
}

/** The current version of a document (0 when it does not exist yet). */
export function versionOf(state: HubState, key: DocKey): number {
  return state.versions.get(key) ?? 0;
}
