import { HASH_DEFINITION } from './hashing.ts';
import type { ReportModel } from './model.ts';

/** Identifies the JSON report's layout; raise `formatVersion` when fields move or change meaning. */
export const JSON_REPORT_KIND = 'switchboard.workflow-report';

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value) && [Object.prototype, null].includes(Object.getPrototypeOf(value));

/**
 * JSON with the keys of every object sorted, indented by two spaces. Key order in the state
 * depends on how it was built (commands, snapshot, journal replay); sorting makes the bytes
 * depend on the content alone.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, item: unknown) => (isPlainObject(item) ? Object.fromEntries(Object.keys(item).sort().map((k) => [k, item[k]])) : item),
    2,
  );
}

/** The JSON report: the complete workflow document plus the summary and statistics. */
export function renderJson(model: ReportModel, hash: string): string {
  const document = {
    report: {
      kind: JSON_REPORT_KIND,
      formatVersion: 1,
      workflowId: model.workflow.id,
      version: model.version,
      hash,
      hashAlgorithm: 'sha256',
      hashDefinition: HASH_DEFINITION,
      generatedBy: model.generatedBy,
      // The time durations of a running workflow are measured to: its last change.
      asOf: model.asOf,
    },
    summary: model.summary,
    statistics: {
      workOrders: model.workOrderStats,
      agents: model.agents,
      dataInventory: model.dataStats,
      timelineEvents: model.timeline.total,
    },
    workflow: model.workflow,
  };
  return `${canonicalJson(document)}\n`;
}
