import * as z from 'zod';
import { Id } from './common.ts';
import { Transfer } from './transfer.ts';

/** The formats a report can be rendered in. */
export const ReportFormat = z.enum(['json', 'markdown', 'html']);
export type ReportFormat = z.infer<typeof ReportFormat>;

/** A rendered report snapshot of one workflow at one version (the Python DocumentationEngine's output). */
export const Report = z.object({
  format: ReportFormat,
  workflowId: Id,
  /** The workflow state version the report describes. */
  version: z.number().int(),
  contentType: z.string(),
  /** A file name for the report, e.g. `report-v42.md`. */
  fileName: z.string(),
  /** SHA-256 of the body with this hash blanked to 64 zeros; the body states it too. */
  hash: z.string(),
  body: z.string(),
});
export type Report = z.infer<typeof Report>;

/** A report as a reply: its body inline, or for a body over 1 MB, a transfer to read it from (then `body` is absent). */
export const ReportReply = Report.extend({ body: z.string().optional(), transfer: Transfer.optional() });
export type ReportReply = z.infer<typeof ReportReply>;

export const ReportInput = z.strictObject({ workflowId: Id, format: ReportFormat.default('markdown') });

/** Where generated reports were written. */
export const WrittenReports = z.object({
  version: z.number().int(),
  files: z.array(z.object({ format: ReportFormat, path: z.string(), hash: z.string() })),
});
