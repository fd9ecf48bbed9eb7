import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '../client-sdk/index.ts';
import { EXAMINED_PER_PAGE } from '../server/domain/machinery/read-bounds.ts';
import type { RunningHub } from '../server/index.ts';
import { agent, control, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { untilWorkflow } from './helpers/wait.ts';

type Filter = Parameters<WorkflowHandle['searchData']>[0];

/**
 * A workflow with six references: three external ones registered first, then, once the clock has
 * moved on, two produced by agents' work orders and one derived by a control client.
 */
async function inventory() {
  const root = tempDir('switchboard-search-');
  const write = (name: string, content: string) => {
    writeFileSync(join(root, name), content);
    return join(root, name);
  };
  let now = Date.UTC(2026, 11, 1, 9);
  const hub = await startHub({ dataRoots: [root] }, { clock: () => now });
  const client = await control(hub);
  const wf = await client.createWorkflow({ userQuery: 'search' });
  await wf.start();
  await wf.addDataReferences([
    { id: 'sales', path: write('sales.csv', 'x'.repeat(300)), tags: ['raw', 'eu'], description: 'Monthly SALES figures' },
    { id: 'users', path: join(root, 'users.parquet'), tags: ['raw'] },
    { id: 'events', path: 's3://lake/events.json', tags: ['eu'], size: 5000 },
  ]);
  // The second batch carries a later timestamp than the first.
  now += 60_000;
  for (const [agentId, taskType, id, file, tags] of [
    ['cleaner', 'clean', 'clean', 'clean.csv', ['clean', 'eu']],
    ['profiler', 'profile', 'profile', 'profile.json', ['report']],
  ] as const) {
    const worker = await agent(hub, { agentId, agentType: taskType });
    await worker.onTask(taskType, () => ({ outputs: [{ id, path: write(file, `${id} output`), tags: [...tags] }] }));
    // profile waits for clean, so the two outputs are created in this order.
    await wf.createWorkOrder({ id: taskType, taskType, inputs: ['sales'], dependencies: taskType === 'profile' ? ['clean'] : [] });
  }
  await untilWorkflow(hub, wf.id, (w) => w.workOrderCounts.completed === 2, 'both work orders completed');
  await wf.addDataReference({ id: 'summary', path: 's3://lake/summary.md', derivedFrom: ['clean', 'profile'] });
  return { hub, wf, batchTwo: (await wf.getDataReference('clean')).createdAt };
}

/** The ids a search returns, over the SDK. */
async function viaSocket(wf: WorkflowHandle, filter: Filter) {
  return (await wf.searchData(filter)).items.map((item) => item.id);
}

/** The ids the HTTP endpoint returns for the same filter written as a query string. */
async function viaHttp(hub: RunningHub, workflowId: string, query: string, token: string = TOKENS.monitor) {
  const res = await fetch(`${hub.url}/api/workflows/${workflowId}/data?${query}`, { headers: { authorization: `Bearer ${token}` } });
  const body = await res.json();
  return { status: res.status, body, ids: res.ok ? (body.items as Array<{ id: string }>).map((item) => item.id) : [] };
}

describe('data search', () => {
  it('filters by type, tags, text, producing agent and work order, source, status and time, from the SDK and over HTTP alike', async () => {
    const { hub, wf, batchTwo } = await inventory();
    const cases: Array<[Filter, string, string[]]> = [
      // Oldest first; references created in the same millisecond follow their ids.
      [{}, '', ['events', 'sales', 'users', 'clean', 'profile', 'summary']],
      [{ dataType: 'csv' }, 'dataType=csv', ['sales', 'clean']],
      [{ tags: ['raw', 'eu'] }, 'tag=raw&tag=eu', ['sales']],
      [{ tags: ['eu'] }, 'tags=eu', ['events', 'sales', 'clean']],
      [{ text: 'sales' }, 'text=sales', ['sales']],
      [{ text: 'LAKE/' }, 'text=LAKE%2F', ['events', 'summary']],
      [{ agentId: 'cleaner' }, 'agentId=cleaner', ['clean']],
      [{ workOrderId: 'profile' }, 'workOrderId=profile', ['profile']],
      [{ source: 'produced' }, 'source=produced', ['clean', 'profile']],
      [{ source: 'derived' }, 'source=derived', ['summary']],
      [{ status: 'missing' }, 'status=missing', ['users']],
      [{ status: 'registered' }, 'status=registered', ['events', 'summary']],
      [{ createdBefore: batchTwo }, `createdBefore=${batchTwo}`, ['events', 'sales', 'users']],
      [{ createdAfter: batchTwo, source: 'produced' }, `createdAfter=${new Date(batchTwo).toISOString()}&source=produced`, ['clean', 'profile']],
      [{ sort: 'size', order: 'desc', tags: ['eu'] }, 'sort=size&order=desc&tag=eu', ['events', 'sales', 'clean']],
      [{ sort: 'path', text: '.csv' }, 'sort=path&text=.csv', ['clean', 'sales']],
    ];
    for (const [filter, query, expected] of cases) {
      expect([query, await viaSocket(wf, filter)]).toEqual([query, expected]);
      expect([query, (await viaHttp(hub, wf.id, query)).ids]).toEqual([query, expected]);
    }
  });

  it('pages through every match exactly once, from the SDK and over HTTP', async () => {
    const { hub, wf } = await inventory();
    const all = await viaSocket(wf, { sort: 'path', order: 'desc' });
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await wf.searchData(cursor ? { sort: 'path', order: 'desc', limit: 4, cursor } : { sort: 'path', order: 'desc', limit: 4 });
      expect(page.total).toBe(6);
      seen.push(...page.items.map((item) => item.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(all);

    const first = await viaHttp(hub, wf.id, 'limit=5');
    const second = await viaHttp(hub, wf.id, `limit=5&cursor=${first.body.nextCursor}`);
    expect([...first.ids, ...second.ids]).toEqual(await viaSocket(wf, {}));
    expect(second.body.nextCursor).toBeNull();
  });

  it('takes back every cursor it hands out, sorted by paths as long and as odd as a reference may record', async () => {
    const wf = await (await control(await startHub())).createWorkflow({ userQuery: 'long paths', config: { enableDataValidation: false } });
    // 2048 characters each: CJK (3 bytes of UTF-8) and control characters (6 bytes of JSON) make the longest cursors.
    const long = (fill: string, last: string) => `s3://lake/${fill.repeat(2048 - 11)}${last}`;
    const refs = ['数', '\u0001'].flatMap((fill, i) => ['a', 'b'].map((last) => ({ id: `r${i}${last}`, path: long(fill, last) })));
    await wf.addDataReferences(refs);
    const seen: string[] = [];
    for await (const ref of wf.dataReferences({ sort: 'path', limit: 1 })) seen.push(ref.id);
    expect(seen).toEqual(['r1a', 'r1b', 'r0a', 'r0b']);
  });

  it('keeps going across short pages when a filter matches few of more references than a page looks at, and knows them again after a restart', async () => {
    const dataDir = tempDir();
    const hub = await startHub({ dataDir });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'sparse' });
    const count = EXAMINED_PER_PAGE + 500;
    const rare = new Set([3, EXAMINED_PER_PAGE + 100]);
    for (let start = 0; start < count; start += 1000) {
      const batch = Array.from({ length: Math.min(1000, count - start) }, (_, k) => start + k);
      await wf.addDataReferences(batch.map((i) => ({ id: `d${String(i).padStart(6, '0')}`, path: `s3://lake/${i}.csv`, tags: rare.has(i) ? ['rare'] : [] })));
    }
    const expected = ['d000003', `d${String(EXAMINED_PER_PAGE + 100).padStart(6, '0')}`];
    // Two conditions the index does not count together: the first page looks at EXAMINED_PER_PAGE references and says to keep going.
    const first = await viaHttp(hub, wf.id, 'tag=rare&dataType=csv&limit=10');
    expect([first.ids, first.body.total, first.body.totalExact, typeof first.body.nextCursor]).toEqual([['d000003'], 1, false, 'string']);
    const second = await viaHttp(hub, wf.id, `tag=rare&dataType=csv&limit=10&cursor=${first.body.nextCursor}`);
    expect([second.ids, second.body.nextCursor]).toEqual([[expected[1]], null]);
    const seen: string[] = [];
    for await (const ref of wf.dataReferences({ tags: ['rare'], dataType: 'csv', limit: 10 })) seen.push(ref.id);
    expect(seen).toEqual(expected);
    // One condition the index counts: an exact total on every page.
    expect(await wf.searchData({ tags: ['rare'], limit: 1 })).toMatchObject({ total: 2, totalExact: true });
    await expect(wf.searchData({ tags: ['rare'], cursor: 'not-a-cursor' })).rejects.toMatchObject({ code: 'VALIDATION' });

    await hub.close();
    const restarted = await startHub({ dataDir });
    const again = (await control(restarted)).workflow(wf.id);
    const afterRestart: string[] = [];
    for await (const ref of again.dataReferences({ tags: ['rare'], sort: 'path', order: 'desc' })) afterRestart.push(ref.id);
    expect(afterRestart).toEqual([...expected].reverse());
  });

  it('answers a bad filter with VALIDATION and a workflow the token cannot see with FORBIDDEN', async () => {
    const hub = await startHub({
      tokens: [
        { token: TOKENS.admin, role: 'admin' },
        { token: 'scoped-monitor-token', role: 'monitor', workflows: ['other'] },
      ],
    });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'scoped' });
    // A misspelt or repeated parameter would otherwise be ignored, and the answer hold what it should have left out.
    for (const query of ['limit=abc', 'limit=0', 'status=lost', 'sort=colour', 'createdAfter=yesterday', 'cursor=garbage', 'datatype=csv', 'status=valid&status=missing']) {
      const reply = await viaHttp(hub, wf.id, query, TOKENS.admin);
      expect([query, reply.status, reply.body.error.code]).toEqual([query, 400, 'VALIDATION']);
    }
    const hidden = await viaHttp(hub, wf.id, '', 'scoped-monitor-token');
    expect([hidden.status, hidden.body.error.code]).toEqual([403, 'FORBIDDEN']);
    await expect(wf.searchData({ status: 'lost' as never })).rejects.toMatchObject({ code: 'VALIDATION' });
  });
});
