import type { Workflow } from '../../shared/schemas/workflow.ts';

/** The key of the hub-wide agent pool document; workflow ids can never take this form. */
export const AGENTS_DOC = '@agents';

/** A document key: a workflow id, or AGENTS_DOC. */
export type DocKey = string;

/** A document and the version it is at, as stored in snapshots. */
export interface StoredDoc {
  v: number;
  doc: unknown;
}

/** The hub's authoritative state: one document per workflow plus the agent pool, each versioned. */
export interface HubState {
  workflows: Map<string, Workflow>;
  versions: Map<DocKey, number>;
}

/** A state with no workflows. */
export function emptyState(): HubState {
  return { workflows: new Map(), versions: new Map() };
}

/** The root object of a document, or undefined when it does not exist. */
export function docRoot(state: HubState, key: DocKey): Record<string, unknown> | undefined {
  return state.workflows.get(key) as Record<string, unknown> | undefined;
}

/** Installs a whole document (creation, or loading from the store). */
export function putDoc(state: HubState, key: DocKey, doc: unknown): void {
  state.workflows.set(key, doc as Workflow);
}

/** Removes a whole document. */
export function dropDoc(state: HubState, key: DocKey): void {
  state.workflows.delete(key);
}

/** Builds the state from stored documents (snapshot plus replayed journal). */
export function stateFromDocs(docs: Map<DocKey, StoredDoc>): HubState {
  const state = emptyState();
  for (const [key, { v, doc }] of docs) {
    putDoc(state, key, doc);
    state.versions.set(key, v);
  }
  return state;
}

/** The current version of a document (0 when it does not exist yet). */
export function versionOf(state: HubState, key: DocKey): number {
  return state.versions.get(key) ?? 0;
}
