import type { Workflow } from '../../../shared/schemas/workflow.ts';
import { ReferenceIndex } from './reference-index.ts';

interface Entry {
  /** The references object the index was built from: another one means the document was replaced. */
  data: Workflow['data'];
  references: ReferenceIndex;
}

/**
 * The indexes of each workflow's data inventory, so that reads of it cost what they return: built
 * for every workflow at start-up and after a rollback, for any other (a new workflow, an archived
 * one read back) when first needed, and kept up to date by the commands that change references.
 */
export class InventoryIndex {
  private readonly entries = new Map<string, Entry>();

  /** The index of a workflow's references, built now when there is none for this document. */
  references(workflow: Workflow): ReferenceIndex {
    let entry = this.entries.get(workflow.id);
    if (!entry || entry.data !== workflow.data) {
      entry = { data: workflow.data, references: new ReferenceIndex(Object.values(workflow.data)) };
      this.entries.set(workflow.id, entry);
    }
    return entry.references;
  }

  /** Forgets the indexes of a workflow that left memory. */
  forget(workflowId: string): void {
    this.entries.delete(workflowId);
  }

  /** Builds every workflow's indexes again from the documents; one with no references gets its (empty) index when first needed. */
  rebuild(workflows: Iterable<Workflow>): void {
    this.entries.clear();
    for (const workflow of workflows) {
      for (const _ in workflow.data) {
        this.references(workflow);
        break;
      }
    }
  }
}
