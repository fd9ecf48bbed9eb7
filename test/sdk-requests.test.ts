import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectControl, HubError, type ControlClient } from '../client-sdk/index.ts';
import { EXAMINED_PER_PAGE } from '../server/domain/machinery/read-bounds.ts';
import { compareCreation } from '../shared/schemas/workflow.ts';
import { hubWithHeldWrites } from './helpers/held-writes.ts';
import { control, startHub, TOKENS } from './helpers/hub.ts';

/** What a request rejected with. */
async function failure(request: Promise<unknown>): Promise<Error> {
  const error = await request.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(Error);
  return error as Error;
}

/** A socket.io server with a /control namespace that accepts anyone and never answers. */
async function silentServer(): Promise<string> {
  const http = createServer();
  const io = new Server(http);
  io.of('/control');
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  onTestFinished(() => io.close());
  return `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
}

describe('SDK requests', () => {
  it('rejects a request whose signal aborts with an AbortError naming the event, sent or not', async () => {
    const client = await control(await startHub());
    const wf = await client.createWorkflow({ userQuery: 'abort' });
    const before = await failure(wf.start({ signal: AbortSignal.abort() }));
    expect(before).toMatchObject({ name: 'AbortError', message: 'workflow.start was aborted before it was sent' });

    const controller = new AbortController();
    const sent = wf.summary({ signal: controller.signal });
    controller.abort(new Error('the user went away'));
    const during = await failure(sent);
    expect(during).toMatchObject({ name: 'AbortError', message: 'workflow.summary was aborted before the hub answered; it may still take effect' });
    expect((during.cause as Error).message).toBe('the user went away');
    expect((await wf.get()).status).toBe('pending');
  });

  it('refuses, sending nothing, a request holding what JSON would change or cannot hold, naming where', async () => {
    const client = await control(await startHub());
    const wf = await client.createWorkflow({ userQuery: 'not JSON' });
    const sent: string[] = [];
    client.connection.socket.onAnyOutgoing((event: string) => sent.push(event));
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = { back: cyclic };
    // Deep enough to overflow the stack of a recursive walk (a bare RangeError).
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const refused = [
      [{ id: 'a', taskType: 't', input: { weights: [0.5, Number.POSITIVE_INFINITY] } }, 'workOrder.create cannot be sent: input.weights[1] is Infinity, which JSON cannot hold (it would arrive as null)'],
      [{ id: 'b', taskType: 't', input: { rows: 3n } }, 'workOrder.create cannot be sent: input.rows is a BigInt, which JSON cannot hold'],
      [{ id: 'c', taskType: 't', input: cyclic }, 'workOrder.create cannot be sent: input.self.back refers back to a value that holds it: JSON cannot hold a cycle'],
      [{ id: 'd', taskType: 't', input: deep }, `workOrder.create cannot be sent: input${'[0]'.repeat(63)} is nested deeper than 64 levels of arrays and objects (the hub takes 16 in a value)`],
    ] as const;
    for (const [spec, message] of refused) {
      const error = await failure(wf.createWorkOrder(spec as never));
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message).toBe(message);
    }
    await expect(wf.recordKpi('k', Number.NaN)).rejects.toThrow('kpi.record cannot be sent: value is NaN, which JSON cannot hold (it would arrive as null)');
    expect(sent).toEqual([]);
    // What JSON holds as it is still goes: a Date as its text, undefined fields left out.
    const at = new Date(0);
    await wf.createWorkOrder({ id: 'ok', taskType: 't', input: { at, skipped: undefined } });
    expect((await wf.getWorkOrder('ok')).input).toEqual({ at: at.toISOString() });
    expect((await wf.listWorkOrders()).items.map((order) => order.id)).toEqual(['ok']);
  });

  it('fails with TIMEOUT, naming the event and the hub, when no answer comes within timeoutMs', async () => {
    const url = await silentServer();
    const client = await connectControl({ url, token: TOKENS.admin });
    onTestFinished(() => client.close());
    const error = await failure(client.listAgents({ timeoutMs: 20 }));
    expect(error).toBeInstanceOf(HubError);
    expect(error).toMatchObject({ code: 'TIMEOUT', message: `agent.list got no answer from the hub at ${url} within 20 ms` });
  });

  it('fails with DISCONNECTED, not TIMEOUT, when the connection drops before the answer', async () => {
    const client = await control(await startHub());
    const pending = client.listAgents();
    client.connection.socket.io.engine.close();
    const error = await failure(pending);
    expect(error).toBeInstanceOf(HubError);
    expect((error as HubError).code).toBe('DISCONNECTED');
    expect(error.message).toContain('dropped before agent.list was answered');
  });

  it('fails with DISCONNECTED, naming the hub and why, when the hub stays down past timeoutMs; the request is never sent', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const dropped = new Promise((resolve) => client.connection.socket.once('disconnect', resolve));
    await hub.close();
    await dropped;
    const error = await failure(client.listAgents({ timeoutMs: 50 }));
    expect(error).toMatchObject({ code: 'DISCONNECTED' });
    expect(error.message).toContain(`agent.list was not sent: no connection to the hub at ${hub.url}`);
  });

  it('fails at once with DISCONNECTED after close(), which resolves once the connection is closed', async () => {
    const client = await connectControl({ url: (await startHub()).url, token: TOKENS.admin });
    await client.close();
    expect(client.connection.socket.connected).toBe(false);
    expect(client.connection.socket.io.engine.readyState).toBe('closed');
    const error = await failure(client.listAgents({ timeoutMs: 600_000 }));
    expect(error).toMatchObject({ code: 'DISCONNECTED' });
    expect(error.message).toContain('was closed');
  });

  it('tries a create given its own id once after close(), failing with DISCONNECTED as one without an id does', async () => {
    // A short timeout, so that a loop of resends (which never yields to the event loop) ends.
    const client = await connectControl({ url: (await startHub()).url, token: TOKENS.admin, requestTimeoutMs: 200 });
    await client.close();
    const request = client.connection.request.bind(client.connection);
    let tries = 0;
    client.connection.request = ((...args: Parameters<typeof request>) => (tries++, request(...args))) as typeof request;
    expect(await failure(client.createWorkflow({ userQuery: 'no id' }))).toMatchObject({ code: 'DISCONNECTED' });
    expect(await failure(client.createWorkflow({ id: 'wf-after-close', userQuery: 'its own id' }))).toMatchObject({ code: 'DISCONNECTED' });
    expect(tries).toBe(2);
  });

  it('fails a request waiting for the reconnection at once with DISCONNECTED when the client is closed', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const dropped = new Promise((resolve) => client.connection.socket.once('disconnect', resolve));
    await hub.close();
    await dropped;
    const waiting = failure(client.listAgents({ timeoutMs: 600_000 }));
    await client.close();
    const error = await waiting;
    expect(error).toMatchObject({ code: 'DISCONNECTED' });
    expect(error.message).toContain('agent.list was not sent: the connection to the hub');
    expect(error.message).toContain('was closed');
  });

  it('waits for the answer with timeoutMs: Infinity (or past 2^31 ms) instead of timing out at once', async () => {
    const { hub, store } = await hubWithHeldWrites();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'no time limit' });
    store.hold();
    const started = wf.start({ timeoutMs: Infinity });
    const created = client.createWorkflow({ userQuery: 'past 2^31 ms' }, { timeoutMs: 2 ** 31 });
    await store.holding.promise;
    // A timer of 1 ms set now fires after any set earlier (the one node sets for a delay it cannot keep).
    await new Promise((resolve) => setTimeout(resolve, 1));
    store.release();
    await expect(started).resolves.toMatchObject({ version: expect.any(Number) });
    await expect(created).resolves.toMatchObject({ id: expect.any(String) });
  });

  it('stays on a node of the list when a request given a shorter timeoutMs than the client\'s goes unanswered', async () => {
    const { hub, store } = await hubWithHeldWrites();
    const other = await startHub();
    const client = await connectControl({ url: [hub.url, other.url], token: TOKENS.admin });
    onTestFinished(() => client.close());
    const wf = await client.createWorkflow({ userQuery: 'a slow answer' });
    store.hold();
    const error = await failure(wf.start({ timeoutMs: 1 }));
    expect(error).toMatchObject({ code: 'TIMEOUT' });
    // Only a request given the client's whole requestTimeoutMs judges the node unresponsive.
    expect([client.connection.url, client.connection.socket.connected]).toEqual([hub.url, true]);
    store.release();
    expect((await wf.summary()).status).toBe('in_progress');
  });

  it('refuses a timeout that is negative or not a number with VALIDATION naming it, sending nothing', async () => {
    const hub = await startHub();
    const client = await control(hub);
    for (const timeoutMs of [-1, Number.NaN]) {
      const error = await failure(client.createWorkflow({ userQuery: 'bad timeout' }, { timeoutMs }));
      expect(error).toMatchObject({ code: 'VALIDATION', message: `timeoutMs must be a number of milliseconds, 0 or more (Infinity: no limit); got ${timeoutMs}` });
    }
    expect((await client.listWorkflows()).items).toEqual([]);
    const refused = await failure(connectControl({ url: hub.url, token: TOKENS.admin, connectTimeoutMs: -5 }));
    expect(refused).toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('connectTimeoutMs must be a number of milliseconds') });
  });

  it('fails a request too big for the hub with VALIDATION, not as DISCONNECTED nor sent again, and changes nothing', async () => {
    const hub = await startHub({ maxHttpBufferSize: 64 * 1024 });
    const client = await connectControl({ url: hub.url, token: TOKENS.admin, requestTimeoutMs: 1000 });
    onTestFinished(() => client.close());
    const wf = await client.createWorkflow({ userQuery: 'big input' });
    let creates = 0;
    client.connection.socket.onAnyOutgoing((event: string) => void (event === 'workOrder.create' && creates++));
    // Within the order's own bound (256 KiB), over the hub's message size: the hub closes the connection at it.
    const error = await failure(wf.createWorkOrder({ id: 'big', taskType: 't', input: 'x'.repeat(100_000) }));
    expect(error).toBeInstanceOf(HubError);
    expect((error as HubError).code).toBe('VALIDATION');
    expect(error.message).toMatch(/^workOrder\.create was not read by the hub: its message \(about \d+ bytes\) is larger than the hub's maxHttpBufferSize/);
    expect(creates).toBe(1);
    // The client reconnects on its own, and the order was never made.
    expect((await failure(wf.getWorkOrder('big'))) as HubError).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('closes a client declared with await using at the end of its block', async () => {
    const hub = await startHub();
    let used: ControlClient | undefined;
    {
      await using client = await connectControl({ url: hub.url, token: TOKENS.admin });
      used = client;
      expect(client.connection.socket.connected).toBe(true);
    }
    expect(used.connection.socket.connected).toBe(false);
    expect(used.connection.socket.io.engine.readyState).toBe('closed');
  });
});

describe('SDK paged lists', () => {
  it('iterates every work order of a state across pages, in creation order', async () => {
    const client = await control(await startHub());
    const wf = await client.createWorkflow({ userQuery: 'paging' });
    const orders = await wf.createWorkOrders(Array.from({ length: 23 }, (_, i) => ({ id: `wo-${String(i).padStart(2, '0')}`, taskType: 't' })));
    const cancelled = orders.filter((_, i) => i % 2 === 0).map((order) => order.id);
    for (const id of cancelled) await wf.cancelWorkOrder(id);
    const seen: string[] = [];
    for await (const order of wf.workOrders({ state: 'cancelled', limit: 5 })) seen.push(order.id);
    expect(seen).toEqual(cancelled);
    const all: string[] = [];
    for await (const order of wf.workOrders({ limit: 7 })) all.push(order.id);
    expect(all).toEqual(orders.map((order) => order.id));
  });

  it('keeps going across the short pages of a state few orders are in, and gives each match once', async () => {
    const client = await control(await startHub());
    const wf = await client.createWorkflow({ userQuery: 'sparse' });
    const ids = Array.from({ length: EXAMINED_PER_PAGE + 500 }, (_, i) => `wo-${i}`);
    for (let start = 0; start < ids.length; start += 1000) await wf.createWorkOrders(ids.slice(start, start + 1000).map((id) => ({ id, taskType: 't' })));
    const cancelled = [ids[3]!, ids[EXAMINED_PER_PAGE + 100]!];
    for (const id of cancelled) await wf.cancelWorkOrder(id);
    // The first page looks at EXAMINED_PER_PAGE orders, finds one and says to keep going.
    const first = await wf.listWorkOrders({ state: 'cancelled', limit: 5 });
    expect([first.items.map((order) => order.id), first.nextCursor]).toEqual([[ids[3]], ids[EXAMINED_PER_PAGE - 1]]);
    const seen: string[] = [];
    for await (const order of wf.workOrders({ state: 'cancelled', limit: 5 })) seen.push(order.id);
    expect(seen).toEqual(cancelled);
    await expect(wf.listWorkOrders({ state: 'cancelled', cursor: 'no-such-order' })).rejects.toMatchObject({ code: 'VALIDATION' });
  });

  it('iterates every workflow and every matching data reference across pages', async () => {
    const client = await control(await startHub());
    const created: Array<{ id: string; createdAt: number }> = [];
    for (let i = 0; i < 5; i++) created.push(await (await client.createWorkflow({ userQuery: `workflow ${i}` })).get());
    const workflows: string[] = [];
    for await (const header of client.workflows({ limit: 2 })) workflows.push(header.id);
    // Oldest first, those created in one millisecond by id.
    expect(workflows).toEqual(created.sort((x, y) => compareCreation(x.createdAt, x.id, y.createdAt, y.id)).map((w) => w.id));

    const wf = client.workflow(created[0]!.id);
    await wf.addDataReferences(Array.from({ length: 9 }, (_, i) => ({ id: `d${i}`, path: `s3://bucket/d${i}.csv`, tags: i % 3 === 0 ? ['keep'] : [] })));
    const kept: string[] = [];
    for await (const ref of wf.dataReferences({ tags: ['keep'], sort: 'path', limit: 1 })) kept.push(ref.id);
    expect(kept).toEqual(['d0', 'd3', 'd6']);
  });
});
