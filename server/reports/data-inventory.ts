import type { Workflow } from '../../shared/schemas/workflow.ts';
import { byCreatedThenId } from './ordering.ts';

/** One data reference as the reports show it. */
export interface DataReferenceRow {
  id: string;
  path: string;
  description: string;
  dataType: string;
  size: number | null;
  checksum: string | null;
  tags: string[];
  status: string;
  createdAt: number | null;
}

const text = (value: unknown, fallback = ''): string => (typeof value === 'string' ? value : fallback);
const count = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null);

/**
 * The workflow's data references, oldest first, or [] when it has none.
 *
 * The `data` field is being added to the Workflow document by a parallel change, so it is not
 * on the type yet; this is the only place that reads it. When the real `DataReference` type
 * lands, replace the cast and the field coercion below with it.
 */
export function dataReferencesOf(workflow: Workflow): DataReferenceRow[] {
  const data = (workflow as Workflow & { data?: unknown }).data;
  if (data === null || typeof data !== 'object') return [];
  const rows: DataReferenceRow[] = [];
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    if (value === null || typeof value !== 'object') continue;
    const entry = value as Record<string, unknown>;
    rows.push({
      id: text(entry.id, key),
      path: text(entry.path),
      description: text(entry.description),
      dataType: text(entry.dataType),
      size: count(entry.size),
      checksum: typeof entry.checksum === 'string' ? entry.checksum : null,
      tags: Array.isArray(entry.tags) ? entry.tags.filter((tag): tag is string => typeof tag === 'string') : [],
      status: text(entry.status, 'unknown'),
      createdAt: count(entry.createdAt),
    });
  }
  return rows.sort(byCreatedThenId);
}
