import { mkdirSync, readdirSync, readFileSync, symlinkSync, watch } from 'node:fs';
import { join, relative } from 'node:path';
import { marked } from 'marked';
import { describe, expect, it, onTestFinished } from 'vitest';
import { verifyReportHash } from '../server/reports/report.ts';
import { agent, control, monitor, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { untilWorkflow } from './helpers/wait.ts';
import { codeOf } from './helpers/errors.ts';

/** Resolves once `file` in `folder` is (re)written and holds `wanted` (watched, not polled). */
function fileWith(folder: string, file: string, wanted: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      try {
        const text = readFileSync(join(folder, file), 'utf8');
        if (wanted(text)) {
          watcher.close();
          clearTimeout(timer);
          resolve(text);
        }
      } catch {
        // not written yet
      }
    };
    const watcher = watch(folder, () => check());
    const timer = setTimeout(() => {
      watcher.close();
      reject(new Error(`timed out waiting for ${file}`));
    }, 15_000);
    onTestFinished(() => watcher.close());
    check();
  });
}

async function busyWorkflow(hub: Awaited<ReturnType<typeof startHub>>, config: Record<string, unknown> = {}, outputFolder?: string) {
  const client = await control(hub);
  const wf = await client.createWorkflow({ userQuery: 'Analyze customer data', config, ...(outputFolder ? { outputFolder } : {}) });
  await wf.start();
  await wf.addObjective({ name: 'Data Analysis', target: '100% completion', priority: 'high' });
  const kpi = await wf.addKpi({ name: 'Accuracy', target: 0.9, unit: 'accuracy' });
  await wf.recordKpi(kpi.id, 0.93);
  await wf.updateProgress('loading', 100);
  await wf.updateProgress('analysis', 50);
  const worker = await agent(hub, { agentId: 'analyst', agentType: 'analysis' });
  await worker.onTask('analysis', () => ({ result: 'ok' }));
  await wf.createWorkOrder({ id: 'job-1', taskType: 'analysis', description: 'Crunch the numbers' });
  await untilWorkflow(hub, wf.id, (w) => w.workOrderCounts.completed === 1, 'job completed');
  return { client, wf };
}

describe('report snapshots over the network', () => {
  it('serves JSON, Markdown and HTML reports whose content matches the state and version', async () => {
    const hub = await startHub();
    const { wf } = await busyWorkflow(hub);
    const watcher = await monitor(hub);
    const version = (await wf.summary()).version;

    const json = await watcher.report(wf.id, 'json');
    expect(json.version).toBe(version);
    const parsed = JSON.parse(json.body);
    expect(JSON.stringify(parsed)).toContain('"job-1"');
    expect(verifyReportHash(json.body, json.hash)).toBe(true);

    const markdown = await watcher.report(wf.id, 'markdown');
    const headings = marked.lexer(markdown.body).filter((t) => t.type === 'heading').map((t) => (t as { text: string }).text);
    expect(headings).toEqual(expect.arrayContaining(['Objectives', 'Work orders', 'Execution timeline']));
    expect(markdown.body).toContain(`${version}`);
    expect(markdown.body).toContain('Data Analysis');

    const html = await watcher.report(wf.id, 'html');
    expect(html.body).toContain(`<meta name="switchboard-version" content="${version}">`);
    expect(html.body).toContain(`<meta name="switchboard-hash" content="${html.hash}">`);
    expect(html.body).not.toMatch(/(src|href)="https?:/);
  });

  it('gives the same bytes for the same version and a new hash after a change', async () => {
    const hub = await startHub();
    const { wf } = await busyWorkflow(hub);
    const watcher = await monitor(hub);
    const first = await watcher.report(wf.id, 'html');
    const again = await watcher.report(wf.id, 'html');
    expect(again.body).toBe(first.body);
    await wf.updateProgress('analysis', 75);
    const later = await watcher.report(wf.id, 'html');
    expect(later.version).toBe(first.version + 1);
    expect(later.hash).not.toBe(first.hash);
  });

  it('serves reports over HTTP to a bearer token and refuses a monitor scoped elsewhere', async () => {
    const hub = await startHub({
      tokens: [
        { token: TOKENS.admin, role: 'admin' },
        { token: TOKENS.agent, role: 'agent' },
        { token: TOKENS.monitor, role: 'monitor' },
        { token: 'elsewhere-monitor', role: 'monitor', workflows: ['other'] },
      ],
    });
    const { wf } = await busyWorkflow(hub);
    const md = await fetch(`${hub.url}/api/workflows/${wf.id}/report.md`, { headers: { authorization: `Bearer ${TOKENS.monitor}` } });
    expect(md.status).toBe(200);
    expect(md.headers.get('content-type')).toContain('text/markdown');
    expect(md.headers.get('x-switchboard-version')).toBe(String((await wf.summary()).version));
    const json = await fetch(`${hub.url}/api/workflows/${wf.id}/report.json`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
    expect(JSON.stringify(await json.json())).toContain('job-1');
    const refused = await fetch(`${hub.url}/api/workflows/${wf.id}/report.html`, { headers: { authorization: 'Bearer elsewhere-monitor' } });
    expect(refused.status).toBe(403);
  });

  it('writes all three formats on demand and, with enableAutoDocumentation, periodically and when the workflow ends', async () => {
    const hub = await startHub();
    const folder = tempDir('switchboard-reports-');
    mkdirSync(folder, { recursive: true });
    const { wf } = await busyWorkflow(hub, { enableAutoDocumentation: true, documentationInterval: 1 }, folder);
    // The periodic write comes on its own.
    const periodic = await fileWith(folder, 'report.md', (text) => text.includes('Data Analysis'));
    expect(periodic).toContain('in_progress');

    const written = await wf.generateReports();
    expect(written.files.map((f) => f.path).sort()).toEqual(['report.html', 'report.json', 'report.md'].map((f) => join(folder, f)));
    expect(JSON.parse(readFileSync(join(folder, 'report.json'), 'utf8'))).toBeTypeOf('object');

    await wf.complete();
    const finalVersion = wf.version;
    const final = await fileWith(folder, 'report.html', (text) => text.includes(`<meta name="switchboard-version" content="${finalVersion}">`));
    expect(final).toContain('completed');
  });

  it('refuses an output folder in the hub’s data directory, however it is named, with FORBIDDEN; workflows/ is where reports go', async () => {
    const dataDir = tempDir();
    const hub = await startHub({ dataDir });
    const client = await control(hub);
    const elsewhere = tempDir('switchboard-link-');
    symlinkSync(dataDir, join(elsewhere, 'hub'));
    const folders = [dataDir, `${dataDir}/workflows/..`, join(elsewhere, 'hub'), join(dataDir, 'archive'), relative(process.cwd(), dataDir)];
    for (const outputFolder of folders) {
      expect([outputFolder, await codeOf(client.createWorkflow({ userQuery: 'beside the journal', outputFolder }))]).toEqual([outputFolder, 'FORBIDDEN']);
    }
    expect((await client.listWorkflows()).items).toEqual([]);

    const custom = await client.createWorkflow({ userQuery: 'in workflows/', outputFolder: join(dataDir, 'workflows', 'custom') });
    expect((await custom.generateReports()).files).toHaveLength(3);
    // A default folder that became a link to the data directory after the workflow was created.
    const moved = await client.createWorkflow({ id: 'moved', userQuery: 'moved' });
    symlinkSync(dataDir, join(dataDir, 'workflows', 'moved'));
    expect(await codeOf(moved.generateReports())).toBe('FORBIDDEN');
    expect(readdirSync(dataDir).filter((name) => name.startsWith('report.'))).toEqual([]);
  });
});
