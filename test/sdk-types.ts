/*
 * Type-level specification of the SDK, checked by `npx tsc --noEmit -p .` (vitest does not run
 * it). Each `@ts-expect-error` is a mistake the types must catch; tsc fails if one is accepted.
 */
import { z } from 'zod';
import {
  connectAgent,
  connectControl,
  connectMonitor,
  type AgentClient,
  type ErrorCode,
  type Task,
  type TaskHandler,
  type Workflow,
  type WorkflowSummary,
  type WorkOrder,
} from 'switchboard/client';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const expectType = <T extends true>(): T => true as T;

export async function typedHandlers(agent: AgentClient): Promise<void> {
  // With a schema, the handler's input is the schema's output (defaults applied, so not optional).
  await agent.onTask('clean', { input: z.object({ rows: z.array(z.number()), strict: z.boolean().default(false) }) }, (task) => {
    expectType<Equal<typeof task.input, { rows: number[]; strict: boolean }>>();
    return { result: task.input.rows.length };
  });
  // Without one, the caller says what the input is; the result is checked against its type.
  await agent.onTask<{ csv: string }, { rows: number }>('load', async (task, ctx) => {
    await ctx.progress(50);
    return { result: { rows: task.input.csv.split('\n').length } };
  });
  // @ts-expect-error the result must be the declared Result type
  await agent.onTask<{ csv: string }, { rows: number }>('load', (task) => ({ result: { rows: task.input.csv } }));
  // @ts-expect-error the input is only what the schema says
  await agent.onTask('clean', { input: z.object({ rows: z.array(z.number()) }) }, (task) => ({ result: task.input.columns }));
  // Unannotated, the input is unknown: it must be checked before use.
  await agent.onTask('any', (task) => {
    expectType<Equal<typeof task.input, unknown>>();
  });
  const handler: TaskHandler<{ n: number }, number> = (task: Task<{ n: number }>) => ({ result: task.input.n * 2 });
  await agent.onTask('double', handler);
}

export async function typedReplies(url: string, token: string): Promise<void> {
  await using control = await connectControl({ url, token });
  const wf = await control.createWorkflow({ userQuery: 'types' });
  expectType<Equal<Awaited<ReturnType<typeof wf.get>>, Workflow>>();
  expectType<Equal<Awaited<ReturnType<typeof wf.summary>>, WorkflowSummary>>();
  for await (const order of wf.workOrders({ state: 'failed' })) expectType<Equal<typeof order, WorkOrder>>();
  // @ts-expect-error not a work order state
  wf.workOrders({ state: 'broken' });
  await using monitor = await connectMonitor({ url, token });
  const live = await monitor.subscribe(wf.id);
  expectType<Equal<typeof live.state, Workflow | undefined>>();
  const pool = await monitor.subscribe('@agents');
  expectType<Equal<NonNullable<typeof pool.state>[string]['status'], 'idle' | 'busy' | 'draining' | 'offline'>>();
  const code: ErrorCode = 'DISCONNECTED';
  void code;
  await using agent = await connectAgent({ url, token, agentId: 'a', agentType: 't', logger: null });
  await agent.drain({ signal: AbortSignal.timeout(1000), timeoutMs: 500 });
}

export async function clusterUrls(urls: string[], token: string): Promise<void> {
  // Every client takes the URLs of a cluster's nodes as well as one URL, and says which node it is on.
  await using control = await connectControl({ url: urls, token });
  await using monitor = await connectMonitor({ url: urls, token });
  await using agent = await connectAgent({ url: urls, token, agentId: 'a', agentType: 't' });
  expectType<Equal<typeof control.connection.url | typeof monitor.connection.url | typeof agent.connection.url, string>>();
  // @ts-expect-error a node's URL is a string
  await connectControl({ url: [4700], token });
}
