import { randomBytes } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ReportFormat } from '../../shared/schemas/report.ts';
import type { HubDirectory } from '../hub-directory.ts';
import type { RenderedReport } from './report-renderer.ts';

const EXTENSION: Record<ReportFormat, string> = { json: 'json', markdown: 'md', html: 'html' };

/**
 * Writes reports to `folder` as report.json, report.md and report.html, each atomically (a
 * temporary file renamed over the old one), so a reader never sees half a report. A folder in the
 * hub's data directory outside `workflows/` is refused (FORBIDDEN) before anything is written:
 * it may have been recorded before that was checked, or become a symlink into it since.
 */
export async function writeReports(
  folder: string,
  reports: readonly RenderedReport[],
  hubDirectory: HubDirectory,
): Promise<Array<{ format: ReportFormat; path: string; hash: string }>> {
  await hubDirectory.requireOutputFolder(folder);
  await mkdir(folder, { recursive: true });
  return Promise.all(
    reports.map(async (report) => {
      const path = join(folder, `report.${EXTENSION[report.format]}`);
      // Unique per write: an on-demand write and an automatic one may run at once for one folder.
      const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
      await writeFile(temporary, report.parts);
      await rename(temporary, path);
      return { format: report.format, path, hash: report.hash };
    }),
  );
}
