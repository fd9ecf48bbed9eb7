import { execFile } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { control, GRANTS, startHub, tempDir, TOKENS } from './helpers/hub.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Each example and lines its output must contain: what a reader of the example is promised. */
const EXAMPLES: Record<string, RegExp[]> = {
  'basic-workflow.ts': [/reports of version \d+: report\.json, report\.md, report\.html/, /1\/1 KPIs met/, /basic workflow \S+: completed/],
  'agent-coordination.ts': [/completed by data_processor, result \{"rows":3,"valid":2\}/, /still queued; no agent has the gpu capability/, /agent coordination: completed/],
  'external-updates.ts': [/update_agent_status: agent_001 is idle, note "Processing data"/, /add_data_reference: customers \(csv\) valid/, /monitor in sync at version \d+/],
  'complete-lifecycle.ts': [/all 4 work orders completed; load reported 3600 rows/, /refused: INVALID_TRANSITION/, /complete lifecycle \S+: completed/],
  'data-pipeline.ts': [/lineage of summary: summary@0 ← clean@1 ← raw@2/, /provenance: produced by analyzer in analysis \(attempt 1\)/, /data pipeline: completed/],
  'ml-pipeline.ts': [/round 1: .* KPI not met/, /round 2: .* KPI met/, /objective completed/, /ml pipeline: completed/],
  'research-study.ts': [/lineage of paper_draft: paper_draft ← results ← research_data/, /integrity after someone appended a row: changed/, /research study: completed/],
  'embed-in-http-server.ts': [/GET \/workflow\/status → 200: in_progress, progress 70%/, /→ 400 \(the hub refused it with VALIDATION\)/],
  'raw-agent.mjs': [/is completed \(workflow version \d+\)/, /a second completion of the same attempt is refused: STALE_ATTEMPT/, /\[raw-agent\] done/],
};

/** The environment without any SWITCHBOARD_* variable of the test run, plus `extra`. */
function environment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('SWITCHBOARD_')));
  return { ...clean, ...extra };
}

/** Runs an example as a child process from the repository root; resolves with its exit code and output. */
async function run(file: string, env: NodeJS.ProcessEnv = environment()): Promise<{ code: number; output: string }> {
  const args = file.endsWith('.mjs') ? [`examples/${file}`] : ['--import', 'tsx', `examples/${file}`];
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, args, { cwd: root, env, timeout: 20_000 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string; signal?: string };
    return { code: failed.code ?? -1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}${failed.signal ? `\n(killed by ${failed.signal})` : ''}` };
  }
}

describe('examples', () => {
  it('covers every program in examples/', () => {
    const programs = readdirSync(new URL('../examples/', import.meta.url)).filter((name) => /\.(ts|mjs)$/.test(name));
    expect(programs.sort()).toEqual(Object.keys(EXAMPLES).sort());
  });

  for (const [file, lines] of Object.entries(EXAMPLES)) {
    it(`${file} starts its own hub, prints what happens and exits 0`, async () => {
      const { code, output } = await run(file);
      expect(code, output).toBe(0);
      for (const line of lines) expect(output).toMatch(line);
    });
  }

  it('use a hub given by SWITCHBOARD_URL and its tokens instead of starting one', async () => {
    const dataRoot = tempDir('switchboard-shared-data-');
    const hub = await startHub({ dataRoots: [dataRoot] });
    const given = { SWITCHBOARD_URL: hub.url, SWITCHBOARD_DATA_ROOT: dataRoot };
    // The tokens from the environment, or from the hub's data directory as the CLI finds them there.
    const tokensDir = tempDir();
    writeFileSync(join(tokensDir, 'tokens.json'), JSON.stringify(GRANTS));
    const envs: Record<string, NodeJS.ProcessEnv> = {
      'basic-workflow.ts': environment({ ...given, SWITCHBOARD_DATA_DIR: tokensDir }),
      'data-pipeline.ts': environment({ ...given, SWITCHBOARD_ADMIN_TOKEN: TOKENS.admin, SWITCHBOARD_AGENT_TOKEN: TOKENS.agent, SWITCHBOARD_MONITOR_TOKEN: TOKENS.monitor }),
    };
    for (const [file, env] of Object.entries(envs)) {
      const { code, output } = await run(file, env);
      expect(code, output).toBe(0);
      for (const line of EXAMPLES[file]!) expect(output).toMatch(line);
    }
    const client = await control(hub);
    const workflows = await Promise.all((await client.listWorkflows()).items.map((header) => client.workflow(header.id).get()));
    expect(workflows.map((wf) => [wf.userQuery, wf.status])).toEqual([
      ['Analyze customer data and generate insights', 'completed'],
      ['Mean sale per region', 'completed'],
    ]);
    expect(workflows[1]!.data.summary).toMatchObject({ status: 'valid', provenance: { agentId: 'analyzer', source: 'produced' } });
  });

  it('data-pipeline.ts says why a given hub refused its files, and that a SWITCHBOARD_DATA_ROOT does not exist', async () => {
    const hub = await startHub({ dataRoots: [tempDir('switchboard-shared-data-')] });
    const given = { SWITCHBOARD_URL: hub.url, SWITCHBOARD_ADMIN_TOKEN: TOKENS.admin, SWITCHBOARD_AGENT_TOKEN: TOKENS.agent, SWITCHBOARD_MONITOR_TOKEN: TOKENS.monitor };
    const outside = await run('data-pipeline.ts', environment({ ...given, SWITCHBOARD_DATA_ROOT: tempDir('switchboard-other-data-') }));
    expect(outside.code, outside.output).not.toBe(0);
    expect(outside.output).toMatch(/loading: failed: .*the hub refused the completion: .* is outside the hub's data roots/);
    expect(outside.output).not.toMatch(/timed out/);
    const missing = await run('data-pipeline.ts', environment({ ...given, SWITCHBOARD_DATA_ROOT: '/nonexistent/switchboard-data' }));
    expect(missing.code, missing.output).not.toBe(0);
    expect(missing.output).toMatch(/SWITCHBOARD_DATA_ROOT is \/nonexistent\/switchboard-data, which does not exist/);
    expect(missing.output).not.toMatch(/ENOENT/);
  });
});
