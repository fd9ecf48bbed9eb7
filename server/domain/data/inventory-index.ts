import type { Workflow } from '../../../shared/schemas/workflow.ts';
import { LineageIndex } from './lineage-index.ts';
import { ReferenceIndex } from './reference-index.ts';

/** An index and the object of the document it was built from: another object means the document was replaced. */
interface Built<T, Source> {
  source: Source;
  index: T;
}

interface Entry {
  references?: Built<ReferenceIndex, Workflow['data']>;
  lineage?: Built<LineageIndex, Workflow['lineage']>;
}

function hasAny(record: object): boolean {
  for (const _ in record) return true;
  return false;
}

/**
 * The indexes of each workflow's data inventory and lineage, so that reads of them cost what they
 * return: built at start-up and after a rollback for every workflow that has references or runs,
 * for any other (a new workflow, an archived one read back) when first needed, and kept up to
 * date by the commands that change them, each change with its undo. A command takes the index
 * before its first write, so that one built then does not already hold its changes.
 */
export class InventoryIndex {
  private readonly entries = new Map<string, Entry>();

  /** The index of a workflow's references, built now when there is none for this document. */
  references(workflow: Workflow): ReferenceIndex {
    const entry = this.entryOf(workflow.id);
    if (entry.references?.source !== workflow.data) entry.references = { source: workflow.data, index: new ReferenceIndex(Object.values(workflow.data)) };
    return entry.references.index;
  }

  /** The index of a workflow's transformations, built now when there is none for this document. */
  lineage(workflow: Workflow): LineageIndex {
    const entry = this.entryOf(workflow.id);
    if (entry.lineage?.source !== workflow.lineage) entry.lineage = { source: workflow.lineage, index: new LineageIndex(Object.values(workflow.lineage)) };
    return entry.lineage.index;
  }

  /** Forgets the indexes of a workflow that left memory. */
  forget(workflowId: string): void {
    this.entries.delete(workflowId);
  }

  /** Builds every workflow's indexes again from the documents. */
  rebuild(workflows: Iterable<Workflow>): void {
    this.entries.clear();
    for (const workflow of workflows) {
      if (hasAny(workflow.data)) this.references(workflow);
      if (hasAny(workflow.lineage)) this.lineage(workflow);
    }
  }

  private entryOf(workflowId: string): Entry {
    let entry = this.entries.get(workflowId);
    if (!entry) this.entries.set(workflowId, (entry = {}));
    return entry;
  }
}
