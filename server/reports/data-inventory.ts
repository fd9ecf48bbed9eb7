import type { DataReference } from '../../shared/schemas/data.ts';
import type { Workflow } from '../../shared/schemas/workflow.ts';
import { byCreatedThenId } from './ordering.ts';

/** One data reference as the reports show it. */
export type DataReferenceRow = Pick<DataReference, 'id' | 'path' | 'description' | 'dataType' | 'size' | 'checksum' | 'tags' | 'status' | 'createdAt' | 'version'>;

/** The workflow's data references, oldest first, or [] when it has none. */
export function dataReferencesOf(workflow: Workflow): DataReferenceRow[] {
  return Object.values(workflow.data)
    .map(({ id, path, description, dataType, size, checksum, tags, status, createdAt, version }) => ({ id, path, description, dataType, size, checksum, tags, status, createdAt, version }))
    .sort(byCreatedThenId);
}
