import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { contract, pushEvents, type NamespaceName } from '../shared/contract.ts';
import { BatchReply, BatchRequest, envelopeOf } from '../shared/envelope.ts';
import { ERROR_CODES } from '../shared/errors.ts';
import { contractJsonSchema } from '../shared/json-schema.ts';
import { agent, control, monitor, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { deferred, untilOrder } from './helpers/wait.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const protocol = readFileSync(join(root, 'PROTOCOL.md'), 'utf8');
const { $defs } = contractJsonSchema();
const namespaces = Object.keys(contract) as NamespaceName[];
type Push = { payload: z.ZodType; reply: z.ZodType | null };
const pushesOf = (namespace: NamespaceName) => pushEvents[namespace] as Record<string, Push>;

/** The published JSON Schema of one `$defs` key, read back by an independent reader. */
const published = (key: string) => z.fromJSONSchema({ $defs, $ref: `#/$defs/${key}` } as never);

/** The contract's own schema for a `$defs` key of the published document. */
function contractSchema(key: string): z.ZodType {
  if (key === 'Ack') return envelopeOf(z.unknown());
  if (key === 'BatchRequest') return BatchRequest;
  if (key === 'BatchReply') return BatchReply;
  const [namespace, event, kind] = key.split(':') as [NamespaceName, string, string];
  const request = (contract[namespace] as Record<string, { request: z.ZodType; reply: z.ZodType }>)[event];
  const push = pushesOf(namespace)[event];
  const schema = kind === 'request' ? request?.request : kind === 'payload' ? push?.payload : (request?.reply ?? push?.reply);
  if (!schema) throw new Error(`PROTOCOL.md has an example for ${key}, which is not in the contract`);
  return schema;
}

/** Every ```json block of PROTOCOL.md labelled with a `$defs` key, in order. */
const examples = [...protocol.matchAll(/^```json ([\w.:@]+)\n([\s\S]*?)^```$/gm)].map((m) => ({ key: m[1]!, text: m[2]! }));

/** The text of the section that starts with `heading`, up to the next heading of the same level. */
function section(heading: string): string {
  const start = protocol.indexOf(`\n${heading}\n`);
  if (start === -1) throw new Error(`PROTOCOL.md has no section "${heading}"`);
  const next = protocol.indexOf('\n## ', start + heading.length + 2);
  return protocol.slice(start, next === -1 ? undefined : next);
}

describe('PROTOCOL.md', () => {
  it('gives every event of every namespace, pushes included, a heading in its namespace section', () => {
    const missing: string[] = [];
    for (const namespace of namespaces) {
      const headings = section(`## The /${namespace} namespace`).split('\n').filter((line) => line.startsWith('#'));
      for (const event of [...Object.keys(contract[namespace]), ...Object.keys(pushesOf(namespace))]) {
        if (!headings.some((line) => line.includes(`\`${event}\``))) missing.push(`/${namespace} ${event}`);
      }
    }
    expect(missing, 'events missing from PROTOCOL.md: document them').toEqual([]);
  });

  it('documents every error code', () => {
    const table = section('## Requests, acks and errors');
    expect(Object.keys(ERROR_CODES).filter((code) => !table.includes(`| \`${code}\` |`))).toEqual([]);
  });

  it('has a JSON example of every request and every push', () => {
    const keys = new Set(examples.map((e) => e.key));
    const wanted = namespaces.flatMap((namespace) => [
      ...Object.keys(contract[namespace]).map((event) => `${namespace}:${event}:request`),
      ...Object.entries(pushesOf(namespace)).flatMap(([event, push]) => [`${namespace}:${event}:payload`, ...(push.reply ? [`${namespace}:${event}:reply`] : [])]),
    ]);
    expect(wanted.filter((key) => !keys.has(key))).toEqual([]);
  });

  it('shows only examples that the contract and the published JSON Schema accept', () => {
    expect(examples.length).toBeGreaterThan(60);
    const wrong: string[] = [];
    for (const { key, text } of examples) {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        wrong.push(`${key}: not JSON (${(error as Error).message})`);
        continue;
      }
      const byContract = contractSchema(key).safeParse(value);
      if (!byContract.success) wrong.push(`${key}: ${z.prettifyError(byContract.error)}`);
      if (!published(key).safeParse(value).success) wrong.push(`${key}: refused by ${key} in the published schema`);
    }
    expect(wrong).toEqual([]);
  });
});

describe('the wire protocol without the SDK', () => {
  it('lets an agent written from PROTOCOL.md alone (raw WebSocket, no socket.io client) take a work order and complete it', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'raw agent' });
    await wf.start();
    const order = await wf.createWorkOrder({ taskType: 'shout', requirements: ['uppercase'], input: { text: 'make some noise' } });
    expect(order.state).toBe('queued');

    const run = promisify(execFile)(process.execPath, ['examples/raw-agent.mjs'], {
      cwd: root,
      timeout: 20_000,
      env: { ...process.env, SWITCHBOARD_URL: hub.url, SWITCHBOARD_AGENT_TOKEN: TOKENS.agent, SWITCHBOARD_ADMIN_TOKEN: '', SWITCHBOARD_TOKENS_FILE: '' },
    });
    const { stdout } = await run;
    expect(stdout).toContain('a second completion of the same attempt is refused: STALE_ATTEMPT');

    const done = await wf.getWorkOrder(order.id);
    expect(done).toMatchObject({ state: 'completed', result: { text: 'MAKE SOME NOISE', length: 15 }, checkpoint: { done: 'MAKE SOM' }, progress: 100 });
    expect(done.history).toEqual([expect.objectContaining({ number: 1, agentId: 'raw-agent', outcome: 'completed' })]);
    expect(await client.getAgent('raw-agent')).toMatchObject({ agentType: 'text', capabilities: ['uppercase'], taskTypes: ['shout'], stats: { completed: 1 } });
    expect((await wf.get()).workOrderCounts).toMatchObject({ completed: 1, running: 0, queued: 0 });
  });

  it('sends replies and pushes that match the published JSON Schema', async () => {
    const dataRoot = tempDir('switchboard-protocol-data-');
    writeFileSync(join(dataRoot, 'in.csv'), 'a,b\n1,2\n');
    const hub = await startHub({ dataRoots: [dataRoot] });
    const admin = await control(hub);
    const watcher = await monitor(hub);
    const worker = await agent(hub, { agentId: 'checker', agentType: 'check', capabilities: ['csv'], logger: { error: console.error } });
    const seen: Array<{ key: string; value: unknown }> = [];
    const record = (connection: { request(event: string, payload: unknown): Promise<unknown> }, namespace: string) => async (event: string, payload: unknown) => {
      const reply = await connection.request(event, payload);
      seen.push({ key: `${namespace}:${event}:reply`, value: reply });
    };
    const c = record(admin.connection as never, 'control');
    const m = record(watcher.connection as never, 'monitor');
    for (const [event, payload] of Object.entries({ assignment: 'agent', cancel: 'agent', drain: 'agent', patch: 'monitor' })) {
      const socket = payload === 'agent' ? worker.connection.socket : watcher.connection.socket;
      socket.on(event, (value: unknown) => seen.push({ key: `${payload}:${event}:payload`, value }));
    }
    const finished = deferred();
    const gate = deferred();
    await worker.onTask('check', async (task, ctx) => {
      await ctx.progress(50, 'half', { at: 1 });
      await ctx.addDataReference({ id: `side-${task.workOrderId}`, path: 's3://lake/side.json' });
      if (task.workOrderId === 'slow') await gate.promise;
      finished.resolve();
      return { result: { ok: true }, outputs: [{ id: `out-${task.workOrderId}`, path: join(dataRoot, 'in.csv'), tags: ['out'] }] };
    });

    const workflow = { id: 'wf-check' };
    await c('workflow.create', { id: workflow.id, userQuery: 'check the schema' });
    await m('subscribe', { doc: workflow.id });
    await m('subscribe', { doc: '@agents' });
    await c('workflow.start', { workflowId: workflow.id });
    await c('workflow.progress', { workflowId: workflow.id, stage: 'a/b', percentage: 10 });
    await c('step.add', { workflowId: workflow.id, id: 's1', name: 'one', start: true });
    await c('step.complete', { workflowId: workflow.id, stepId: 's1', result: { n: 1 } });
    await c('objective.add', { workflowId: workflow.id, id: 'o1', name: 'goal', target: 'all' });
    await c('objective.update', { workflowId: workflow.id, objectiveId: 'o1', status: 'completed' });
    await c('kpi.add', { workflowId: workflow.id, id: 'k1', name: 'speed', target: 10 });
    await c('kpi.record', { workflowId: workflow.id, kpiId: 'k1', value: 12 });
    await c('data.register', { workflowId: workflow.id, id: 'in', path: join(dataRoot, 'in.csv'), tags: ['raw'] });
    await c('workOrder.create', { workflowId: workflow.id, id: 'fast', taskType: 'check', requirements: ['csv'], inputs: ['in'] });
    await finished.promise;
    await untilOrder(hub, workflow.id, 'fast', 'completed');
    await c('workOrder.createMany', { workflowId: workflow.id, orders: [{ id: 'slow', taskType: 'check' }, { id: 'after', taskType: 'check', dependencies: ['slow'] }] });
    await untilOrder(hub, workflow.id, 'slow', 'running');
    await c('workflow.autoAssign', { workflowId: workflow.id });
    await c('workOrder.cancel', { workflowId: workflow.id, workOrderId: 'slow', reason: 'enough' });
    gate.resolve();
    await c('workOrder.get', { workflowId: workflow.id, workOrderId: 'fast' });
    await c('workOrder.list', { workflowId: workflow.id });
    await c('workflow.list', {});
    await c('workflow.get', { workflowId: workflow.id });
    await c('workflow.summary', { workflowId: workflow.id });
    await c('agent.list', {});
    await c('agent.get', { agentId: 'checker' });
    await c('agent.update', { agentId: 'checker', note: 'checked' });
    const drained = new Promise((resolve) => worker.connection.socket.once('drain', resolve));
    await c('agent.update', { agentId: 'checker', status: 'draining' });
    await drained;
    await c('agent.update', { agentId: 'checker', status: 'active' });
    await c('data.registerMany', { workflowId: workflow.id, items: [{ id: 'remote', path: 's3://lake/r.parquet' }] });
    await c('data.update', { workflowId: workflow.id, dataId: 'remote', description: 'v2' });
    await c('data.validate', { workflowId: workflow.id, dataId: 'in' });
    await c('data.get', { workflowId: workflow.id, dataId: 'in' });
    await c('data.search', { workflowId: workflow.id, tags: ['out'] });
    await c('lineage.link', { workflowId: workflow.id, operation: 'join', inputs: ['in', 'remote'], outputs: ['out-fast'] });
    await c('lineage.upstream', { workflowId: workflow.id, dataId: 'out-fast' });
    await c('lineage.downstream', { workflowId: workflow.id, dataId: 'in', maxDepth: 1 });
    await c('lineage.graph', { workflowId: workflow.id });
    await c('lineage.openLineage', { workflowId: workflow.id, workOrderId: 'fast' });
    await c('workflow.report', { workflowId: workflow.id, format: 'json' });
    await c('workflow.generateReports', { workflowId: workflow.id });
    await m('summary', { workflowId: workflow.id });
    await m('report', { workflowId: workflow.id, format: 'html' });
    await m('subscribe', { doc: workflow.id, version: 3 });
    await m('subscribeAll', { versions: { [workflow.id]: 5 } });
    await m('unsubscribe', { doc: '@agents' });
    await c('workflow.complete', { workflowId: workflow.id });
    await c('workflow.create', { id: 'wf-fail', userQuery: 'fails' });
    await c('workflow.fail', { workflowId: 'wf-fail', reason: 'because' });

    const kinds = new Set(seen.map((s) => s.key));
    for (const key of ['agent:assignment:payload', 'agent:cancel:payload', 'agent:drain:payload', 'monitor:patch:payload']) expect(kinds).toContain(key);
    const refused = seen.filter(({ key, value }) => !published(key).safeParse(value).success).map(({ key, value }) => `${key}: ${JSON.stringify(value).slice(0, 300)}`);
    expect(refused).toEqual([]);
  });
});
