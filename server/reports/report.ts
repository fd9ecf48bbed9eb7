import { ReportFormat, type Report } from '../../shared/schemas/report.ts';
import { sealReport } from './hashing.ts';
import { renderHtml } from './html.ts';
import { renderJson } from './json.ts';
import { renderMarkdown } from './markdown.ts';
import { buildReportModel, type ReportInput, type ReportModel } from './model.ts';

export type { ReportInput } from './model.ts';
export { HASH_PLACEHOLDER, verifyReportHash } from './hashing.ts';

export type { Report, ReportFormat } from '../../shared/schemas/report.ts';
export const REPORT_FORMATS: readonly ReportFormat[] = ReportFormat.options;

const FORMATS: Record<ReportFormat, { contentType: string; extension: string; render: (model: ReportModel, hash: string) => string }> = {
  json: { contentType: 'application/json; charset=utf-8', extension: 'json', render: renderJson },
  markdown: { contentType: 'text/markdown; charset=utf-8', extension: 'md', render: renderMarkdown },
  html: { contentType: 'text/html; charset=utf-8', extension: 'html', render: renderHtml },
};

/**
 * Renders a report of a workflow at a version. Pure and deterministic: no clock, no random ids,
 * every list sorted, so the same input gives byte-identical output and the same hash.
 * @example renderReport({ workflow, version: 42, agents: {} }, 'markdown').body
 */
export function renderReport(input: ReportInput, format: ReportFormat): Report {
  return renderReports(input, [format])[0]!;
}

/** Renders several formats of one workflow at one version, computing the shared model once. */
export function renderReports(input: ReportInput, formats: readonly ReportFormat[] = REPORT_FORMATS): Report[] {
  const model = buildReportModel(input);
  return formats.map((format) => {
    const { contentType, extension, render } = FORMATS[format];
    const { body, hash } = sealReport((hash) => render(model, hash));
    return { format, workflowId: input.workflow.id, version: input.version, contentType, fileName: `report-v${input.version}.${extension}`, hash, body };
  });
}
