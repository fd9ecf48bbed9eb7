import { randomBytes } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ReportFormat } from '../../shared/schemas/report.ts';
import { versionOf, type HubState } from '../domain/machinery/state.ts';
import { requireWorkflow } from '../domain/machinery/context.ts';
import type { HubDirectory } from '../hub-directory.ts';
import type { Report } from './report.ts';

const EXTENSION: Record<ReportFormat, string> = { json: 'json', markdown: 'md', html: 'html' };

/** The renderers (and marked with them), loaded at the first report: a hub starts without them. */
let renderers: Promise<typeof import('./report.ts')> | undefined;

/** Renders reports of a workflow as it is once the renderers are loaded (its version, and the agent pool for agent details). */
export async function reportsOf(state: HubState, workflowId: string, formats?: readonly ReportFormat[]): Promise<Report[]> {
  const { renderReports } = await (renderers ??= import('./report.ts'));
  const workflow = requireWorkflow(state, workflowId);
  return renderReports({ workflow, version: versionOf(state, workflowId), agents: state.agents ?? {} }, formats);
}

/**
 * Writes reports to `folder` as report.json, report.md and report.html, each atomically (a
 * temporary file renamed over the old one), so a reader never sees half a report. A folder in the
 * hub's data directory outside `workflows/` is refused (FORBIDDEN) before anything is written:
 * it may have been recorded before that was checked, or become a symlink into it since.
 */
export async function writeReports(
  folder: string,
  reports: readonly Report[],
  hubDirectory: HubDirectory,
): Promise<Array<{ format: ReportFormat; path: string; hash: string }>> {
  await hubDirectory.requireOutputFolder(folder);
  await mkdir(folder, { recursive: true });
  return Promise.all(
    reports.map(async (report) => {
      const path = join(folder, `report.${EXTENSION[report.format]}`);
      // Unique per write: an on-demand write and an automatic one may run at once for one folder.
      const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
      await writeFile(temporary, report.body);
      await rename(temporary, path);
      return { format: report.format, path, hash: report.hash };
    }),
  );
}
