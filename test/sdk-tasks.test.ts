import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { z } from 'zod';
import { connectAgent, NonRetryableError, type HubError, type InputSchema, type TaskReport } from '../client-sdk/index.ts';
import { hubWithHeldWrites } from './helpers/held-writes.ts';
import type { HubState } from '../server/domain/machinery/state.ts';
import { agent, control, GRANTS, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';
import { deferred, untilOrder, untilTrue, untilWorkflow } from './helpers/wait.ts';

const Clean = z.object({ rows: z.array(z.number()), dropEmpty: z.boolean().default(true) });

/** A logger that keeps what it is given. */
function collectingLogger() {
  const logged: Array<{ message: string; error: unknown }> = [];
  return { logged, error: (message: string, error: unknown) => void logged.push({ message, error }) };
}

describe('typed task handlers', () => {
  it('hands the handler the input its schema parsed, defaults applied', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'typed input' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'cleaner', agentType: 'cleaning' });
    await worker.onTask('clean', { input: Clean }, (task) => ({ result: { kept: task.input.rows.length, dropEmpty: task.input.dropEmpty } }));
    await wf.createWorkOrder({ id: 'ok', taskType: 'clean', input: { rows: [1, 2, 3] } });
    expect((await untilOrder(hub, wf.id, 'ok', 'completed')).result).toEqual({ kept: 3, dropEmpty: true });
  });

  it('fails an order whose input does not match the schema at once, without retrying or running the handler, with the issues in its error', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'wrong input' });
    await wf.start();
    const logger = collectingLogger();
    const worker = await agent(hub, { agentId: 'cleaner', agentType: 'cleaning', logger });
    const ran = vi.fn();
    await worker.onTask('clean', { input: Clean }, ran);
    await wf.createWorkOrder({ id: 'bad', taskType: 'clean', input: { rows: [1, 'two'], dropEmpty: 'yes' }, maxAttempts: 3 });
    const order = await untilOrder(hub, wf.id, 'bad', 'failed');
    expect(order.attempts).toBe(1);
    expect(order.error).toContain('the input does not match the schema of task "clean"');
    expect(order.error).toMatch(/rows\.1: [^;]*expected number/);
    expect(order.error).toMatch(/dropEmpty: [^;]*expected boolean/);
    expect(ran).not.toHaveBeenCalled();
    expect(logger.logged).toHaveLength(1);
    expect(logger.logged[0]!.message).toContain('the input did not match the schema of task "clean" on work order bad');
    expect(logger.logged[0]!.error).toBeInstanceOf(NonRetryableError);
  });

  it("takes any Standard Schema, not only this package's zod: one of another library or zod version checks the input and types the handler", async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'another schema library' });
    await wf.start();
    // What zod 3.24+, valibot or arktype hand over: no zod 4 methods, only '~standard'.
    const Rows: InputSchema<{ rows: number }> = {
      '~standard': {
        version: 1,
        vendor: 'elsewhere',
        validate: (value) => {
          const rows = (value as { rows?: unknown } | null)?.rows;
          return typeof rows === 'number' ? { value: { rows } } : { issues: [{ message: 'expected a number', path: [{ key: 'rows' }] }] };
        },
      },
    };
    const worker = await agent(hub, { agentId: 'counter', agentType: 'counting', logger: null });
    await worker.onTask('count', { input: Rows }, (task) => ({ result: { double: task.input.rows * 2 } }));
    await wf.createWorkOrders([
      { id: 'ok', taskType: 'count', input: { rows: 21 } },
      { id: 'bad', taskType: 'count', input: { rows: 'many' }, maxAttempts: 3 },
    ]);
    expect((await untilOrder(hub, wf.id, 'ok', 'completed')).result).toEqual({ double: 42 });
    const bad = await untilOrder(hub, wf.id, 'bad', 'failed');
    expect({ attempts: bad.attempts, error: bad.error }).toEqual({ attempts: 1, error: 'failed (not retryable): the input does not match the schema of task "count": rows: expected a number' });
  });

  it('refuses at onTask a schema that is no Standard Schema (a zod before 3.24), saying what it takes', async () => {
    const hub = await startHub();
    const worker = await agent(hub, { agentId: 'counter', agentType: 'counting' });
    const oldZod = { safeParseAsync: async (value: unknown) => ({ success: true, data: value }) } as unknown as InputSchema;
    await expect(worker.onTask('count', { input: oldZod }, () => undefined)).rejects.toThrow(/input is no Standard Schema \(zod 3\.24 or later/);
  });
});

describe('handler errors', () => {
  it('reach the logger with their stack, naming the agent, task and work order', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'throwing handler' });
    await wf.start();
    const logger = collectingLogger();
    const worker = await agent(hub, { agentId: 'thrower', agentType: 'w', logger });
    await worker.onTask('explode', function explodingHandler() {
      throw new Error('boom');
    });
    await wf.createWorkOrder({ id: 'kaboom', taskType: 'explode', maxAttempts: 1 });
    expect((await untilOrder(hub, wf.id, 'kaboom', 'failed')).error).toBe('failed after 1 attempt(s): boom');
    expect(logger.logged).toHaveLength(1);
    const [{ message, error }] = logger.logged as [{ message: string; error: Error }];
    expect(message).toBe(`[switchboard] agent thrower: the "explode" handler threw on work order kaboom of workflow ${wf.id} (attempt 1); the attempt fails:`);
    expect(error.message).toBe('boom');
    expect(error.stack).toContain('explodingHandler');
  });

  it('go to console.error by default, and nowhere with logger: null', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'default logger' });
    await wf.start();
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const loud = await agent(hub, { agentId: 'loud', agentType: 'w' });
      await loud.onTask('loud', () => {
        throw new Error('heard');
      });
      const silent = await agent(hub, { agentId: 'silent', agentType: 'w', logger: null });
      const silentFailed = deferred();
      silent.on('report', (report) => report.outcome === 'failed' && silentFailed.resolve());
      await silent.onTask('silent', () => {
        throw new Error('unheard');
      });
      await wf.createWorkOrders([
        { id: 'silent', taskType: 'silent', maxAttempts: 1 },
        { id: 'loud', taskType: 'loud', maxAttempts: 1 },
      ]);
      await untilOrder(hub, wf.id, 'loud', 'failed');
      await silentFailed.promise;
      expect(consoleError.mock.calls.map(([message, error]) => [String(message).slice(0, 33), (error as Error).message])).toEqual([
        ['[switchboard] agent loud: the "lo', 'heard'],
      ]);
    } finally {
      consoleError.mockRestore();
    }
  });
  it('fail the attempt with a stand-in message when what was thrown says nothing (an empty string)', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'empty throw' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'mute', agentType: 'w', logger: null });
    const reported = deferred<TaskReport>();
    worker.on('report', (report) => reported.resolve(report));
    await worker.onTask('mute', () => {
      throw '';
    });
    await wf.createWorkOrder({ id: 'mute', taskType: 'mute', maxAttempts: 1 });
    expect(await reported.promise).toMatchObject({ outcome: 'failed', accepted: true });
    expect((await wf.getWorkOrder('mute')).error).toBe('failed after 1 attempt(s): the handler threw without a message');
  });
  it('fail the attempt for good when the result cannot be sent (a BigInt), instead of leaving the order running', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'unsendable result' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'big', agentType: 'w', logger: null });
    await worker.onTask('big', () => ({ result: { rows: 1n } }));
    await wf.createWorkOrder({ id: 'big', taskType: 'big', maxAttempts: 3 });
    const order = await untilOrder(hub, wf.id, 'big', 'failed');
    expect(order.attempts).toBe(1);
    expect(order.error).toBe('failed (not retryable): the completion could not be sent: task.complete cannot be sent: result.rows is a BigInt, which JSON cannot hold');
  });
  it('fail the attempt for good when the result holds NaN, which JSON would turn into null, naming where', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'NaN in a result' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'nan', agentType: 'w', logger: null });
    await worker.onTask('nan', () => ({ result: { scores: [1, Number.NaN] } }));
    await wf.createWorkOrder({ id: 'nan', taskType: 'nan', maxAttempts: 3 });
    const order = await untilOrder(hub, wf.id, 'nan', 'failed');
    expect(order).toMatchObject({ attempts: 1, result: null });
    expect(order.error).toBe('failed (not retryable): the completion could not be sent: task.complete cannot be sent: result.scores[1] is NaN, which JSON cannot hold (it would arrive as null)');
  });
  it('fail the attempt for good when the completion is too big for the hub to read, instead of resending it for ever', async () => {
    const hub = await startHub({ maxHttpBufferSize: 32 * 1024 });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'oversized result' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'huge', agentType: 'w', logger: null });
    const progressError = deferred<unknown>();
    await worker.onTask('huge', async (_task, ctx) => {
      // Within the bounds of details (64 KiB) and result (256 KiB), over the hub's message size.
      progressError.resolve(await ctx.progress(50, 'half', { rows: 'r'.repeat(40_000) }).catch((e: unknown) => e));
      return { result: 'x'.repeat(100_000) };
    });
    await wf.createWorkOrder({ id: 'huge', taskType: 'huge', maxAttempts: 3 });
    const order = await untilOrder(hub, wf.id, 'huge', 'failed');
    expect(await progressError.promise).toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/^task\.progress was not read by the hub/) });
    expect(order.attempts).toBe(1);
    expect(order.error).toMatch(/^failed \(not retryable\): the hub refused the completion: task\.complete was not read by the hub: its message \(about \d+ bytes\) is larger/);
  });
});

describe('progress', () => {
  it('hands the next attempt a checkpoint saved while an update was in flight, though a newer update without details followed it', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'checkpoint then progress' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'resumer', agentType: 'w', logger: null });
    await worker.onTask('resume', async (_task, ctx) => {
      if (ctx.attempt === 2) return { result: ctx.checkpoint };
      const first = ctx.progress(10);
      // Both wait behind the first update; the checkpoint's promise resolves only if it was saved.
      const saved = ctx.checkpointNow({ offset: 600 });
      await Promise.all([first, saved, ctx.progress(60)]);
      throw new Error('crashed after saving a checkpoint');
    });
    await wf.createWorkOrder({ id: 'job', taskType: 'resume', maxAttempts: 2 });
    expect((await untilOrder(hub, wf.id, 'job', 'completed')).result).toEqual({ offset: 600 });
  });

  it('refuses a percentage outside 0..100 with VALIDATION at once, keeping the last good one for checkpoints', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'bad percentage' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'counter', agentType: 'w', logger: null });
    await worker.onTask('count', async (_task, ctx) => {
      await ctx.progress(40);
      const refused = await Promise.all([ctx.progress(150), ctx.progress(0 / 0)].map((p) => p.catch((e: unknown) => e)));
      await ctx.checkpointNow({ offset: 7 });
      return { result: refused.map((e) => [(e as HubError).code, (e as HubError).message]) };
    });
    await wf.createWorkOrder({ id: 'count', taskType: 'count' });
    const order = await untilOrder(hub, wf.id, 'count', 'completed');
    expect(order.result).toEqual([
      ['VALIDATION', 'progress must be a number from 0 to 100; got 150'],
      ['VALIDATION', 'progress must be a number from 0 to 100; got NaN'],
    ]);
    expect(order.checkpoint).toEqual({ offset: 7 });
  });

  it('reported without awaiting after the task was cancelled is no unhandled rejection that could end the process', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'progress not awaited' });
    await wf.start();
    const unhandled: unknown[] = [];
    const note = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', note);
    onTestFinished(() => void process.off('unhandledRejection', note));
    const worker = await agent(hub, { agentId: 'fire-and-forget', agentType: 'w' });
    const started = deferred();
    const reported = deferred<{ late: Promise<void> }>();
    await worker.onTask('long', async (_task, ctx) => {
      started.resolve();
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      // A loop (or a timer) that reports without awaiting, not yet told of the cancellation.
      reported.resolve({ late: ctx.progress(99) });
    });
    await wf.createWorkOrder({ id: 'long', taskType: 'long' });
    await started.promise;
    await wf.cancelWorkOrder('long', 'not needed');
    const { late } = await reported.promise;
    // Rejections nobody handles are reported once the microtasks have run.
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
    // Whoever awaits it still learns why.
    await expect(late).rejects.toMatchObject({ code: 'STALE_ATTEMPT' });
  });
});

describe('reporting a completion whose answer is lost', () => {
  it('takes the repeat refused as STALE_ATTEMPT for the first try’s success, after a request timeout', async () => {
    const { hub, store } = await hubWithHeldWrites();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'lost answer' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'slow-hub', agentType: 'w', requestTimeoutMs: 300 });
    const reports: TaskReport[] = [];
    const reported = deferred();
    worker.on('report', (report) => {
      reports.push(report);
      reported.resolve();
    });
    const handled = deferred();
    await worker.onTask('t', async () => {
      // Writes are held from here on: the completion is applied, and its answer waits past the timeout.
      store.hold();
      handled.resolve();
      return { result: 'done' };
    });
    const resent = deferred();
    let completions = 0;
    worker.connection.socket.onAnyOutgoing((event: string) => {
      if (event === 'task.complete' && ++completions === 2) resent.resolve();
    });
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    await handled.promise;
    await store.holding.promise;
    // The first try times out and is sent again. The repeat is refused (the attempt is no longer
    // running), once the first is stored: a refusal resting on a change waits for its write.
    await resent.promise;
    store.release();
    await reported.promise;
    expect(reports).toEqual([{ workflowId: wf.id, workOrderId: 'job', attemptToken: expect.any(String), outcome: 'completed', accepted: true }]);
    expect(await untilOrder(hub, wf.id, 'job', 'completed')).toMatchObject({ result: 'done', attempts: 1 });
  });
});

describe('a completion lost on the way to the hub', () => {
  it('is not reported accepted when the hub ended the attempt without it, though the repeat is refused STALE_ATTEMPT', async () => {
    const hub = await startHub({ sweepIntervalMs: 20 });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'a completion lost in the network' });
    await wf.start();
    // Through a proxy that can forget the connection, and a second way in that the SDK moves to after a timeout.
    const proxy = await startTcpProxy(hub.port);
    const other = await startTcpProxy(hub.port);
    onTestFinished(() => Promise.all([proxy.close(), other.close()]).then(() => undefined));
    const worker = await connectAgent({ url: [proxy.through(hub.url), other.through(hub.url)], token: TOKENS.agent, agentId: 'cut-off', agentType: 'w', requestTimeoutMs: 2000, logger: null });
    onTestFinished(() => worker.close());
    const started = deferred();
    const finish = deferred();
    await worker.onTask('t', async () => {
      started.resolve();
      await finish.promise;
      return { result: 'done' };
    });
    const report = new Promise<TaskReport>((resolve) => worker.on('report', resolve));
    await wf.createWorkOrder({ id: 'job', taskType: 't', maxAttempts: 1, timeouts: { leaseMs: 500 } });
    await started.promise;
    await untilOrder(hub, wf.id, 'job', 'running');
    // The network forgets the connection; the completion goes into the void and the lease lapses.
    expect(proxy.dropEstablished()).toBeGreaterThan(0);
    finish.resolve();
    expect(await untilOrder(hub, wf.id, 'job', 'failed')).toMatchObject({ result: null, history: [{ agentId: 'cut-off', outcome: 'lease_expired' }] });
    // Timed out, the completion goes again by the other way and is refused: its attempt ended otherwise.
    expect(await report).toMatchObject({ workOrderId: 'job', outcome: 'completed', accepted: false, code: 'STALE_ATTEMPT' });
  });
});

describe('listeners that throw', () => {
  it('do not stop the agent: a report listener that throws sees each completion once, accepted, and the next order runs', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'a throwing listener' });
    await wf.start();
    const logger = collectingLogger();
    const worker = await agent(hub, { agentId: 'listened', agentType: 'w', logger });
    const reports: TaskReport[] = [];
    worker.on('report', (report) => {
      reports.push(report);
      throw new Error('a bug in the listener');
    });
    await worker.onTask('t', (task) => ({ result: task.workOrderId }));
    await wf.createWorkOrder({ id: 'first', taskType: 't' });
    await untilOrder(hub, wf.id, 'first', 'completed');
    await wf.createWorkOrder({ id: 'second', taskType: 't' });
    expect((await untilOrder(hub, wf.id, 'second', 'completed')).result).toBe('second');
    expect(reports.map((report) => [report.workOrderId, report.outcome, report.accepted])).toEqual([
      ['first', 'completed', true],
      ['second', 'completed', true],
    ]);
    expect(logger.logged.map(({ message, error }) => [message, (error as Error).message])).toEqual([
      ['[switchboard] agent listened: a "report" listener threw:', 'a bug in the listener'],
      ['[switchboard] agent listened: a "report" listener threw:', 'a bug in the listener'],
    ]);
  });
});

describe('a checkpoint saved just before the handler throws', () => {
  it('is handed to the next attempt, though an earlier update was still in flight when it was saved', async () => {
    const hub = await startHub({ backoffBaseMs: 10, backoffMaxMs: 20 });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'checkpoint, then throw' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'resumer', agentType: 'w', logger: null });
    await worker.onTask('rows', async (_task, ctx) => {
      if (ctx.attempt === 2) return { result: ctx.checkpoint };
      // A loop that reports without awaiting, as the docs allow (coalesced while one is in flight).
      void ctx.progress(10, 'row 1 done', { offset: 1 }).catch(() => undefined);
      void ctx.progress(20, 'row 2 done', { offset: 2 }).catch(() => undefined);
      throw new Error('row 3 is malformed');
    });
    await wf.createWorkOrder({ id: 'job', taskType: 'rows', maxAttempts: 2 });
    // Rows 1 and 2 were done and checkpointed before the throw: the retry should resume after row 2.
    expect((await untilOrder(hub, wf.id, 'job', 'completed')).result).toEqual({ offset: 2 });
  });
});

describe('a logger that throws', () => {
  it('does not turn a handler error into an unhandled rejection, and the attempt is still reported failed', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'a logger passed unbound' });
    await wf.start();
    const unhandled: unknown[] = [];
    const sawUnhandled = deferred();
    const note = (reason: unknown) => {
      unhandled.push(reason);
      sawUnhandled.resolve();
    };
    process.on('unhandledRejection', note);
    onTestFinished(() => void process.off('unhandledRejection', note));
    // A common slip: a logger's method handed over without its object (as with pino's or winston's).
    class AppLog {
      readonly lines: string[] = [];
      error(message: string) {
        this.lines.push(message);
      }
    }
    const log = new AppLog();
    const worker = await agent(hub, { agentId: 'logged', agentType: 'w', logger: { error: log.error } });
    await worker.onTask('t', () => {
      throw new Error('the handler failed');
    });
    await wf.createWorkOrder({ id: 'job', taskType: 't', maxAttempts: 1 });
    // Either the SDK reports the failure (the order fails at once) or its rejection goes unhandled.
    const failed = untilOrder(hub, wf.id, 'job', 'failed');
    failed.catch(() => undefined);
    await Promise.race([sawUnhandled.promise, failed]);
    expect(unhandled).toEqual([]);
    expect(await failed).toMatchObject({ state: 'failed', error: 'failed after 1 attempt(s): the handler failed' });
  });
});

describe('onTask names the hub refuses or rewrites', () => {
  it('a refused onTask (a task type name too long) leaves the agent able to register its other handlers', async () => {
    const hub = await startHub();
    const worker = await agent(hub, { agentId: 'poisoned', agentType: 'w', logger: null });
    await worker.onTask('good', () => ({ result: 'ok' }));
    const refused = await worker.onTask('x'.repeat(101), () => ({ result: 'never' })).catch((error: HubError) => error);
    expect(refused).toMatchObject({ code: 'VALIDATION' });
    // The author caught the refusal and goes on: a valid handler must still register.
    await expect(worker.onTask('also-good', () => ({ result: 'ok too' }))).resolves.toBe(worker);
  });

  it('a refused onTask does not make every later registration fail: after a reconnect the agent re-registers, and its running task completes', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'one bad task type name, then a reconnect' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'poisoned', agentType: 'w', logger: null });
    const started = deferred();
    const release = deferred();
    await worker.onTask('good', async () => {
      started.resolve();
      await release.promise;
      return { result: 'ok' };
    });
    await wf.createWorkOrder({ id: 'job', taskType: 'good' });
    await started.promise;
    // Caught by the author; the agent goes on working with its valid handler.
    expect(await worker.onTask('x'.repeat(101), () => ({ result: 'never' })).catch((error: HubError) => error.code)).toBe('VALIDATION');
    const errors: HubError[] = [];
    const failed = deferred();
    worker.on('error', (error) => {
      errors.push(error);
      failed.resolve();
    });
    // A network blip: socket.io reconnects and the SDK registers again.
    const reconnected = deferred();
    worker.connection.socket.once('connect', () => reconnected.resolve());
    worker.connection.socket.io.engine.close();
    await reconnected.promise;
    release.resolve();
    const done = untilOrder(hub, wf.id, 'job', 'completed');
    done.catch(() => undefined);
    await Promise.race([done, failed.promise]);
    expect(errors).toEqual([]);
    expect((await done).result).toBe('ok');
  });

  it('runs the work of a task type registered with blanks around its name (the hub trims it), instead of declining it for good', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'a padded task type' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'padded', agentType: 'w', logger: null });
    // e.g. a name read from a config file with its trailing newline
    await worker.onTask('clean\n', () => ({ result: 'cleaned' }));
    await wf.createWorkOrder({ id: 'job', taskType: 'clean' });
    const settled = await untilWorkflow(hub, wf.id, (w) => w.workOrders.job!.state === 'completed' || w.workOrders.job!.declinedBy.length > 0, 'job completed or declined');
    expect(settled.workOrders.job).toMatchObject({ state: 'completed', declinedBy: [] });
  });
});

describe('an agent that can no longer work', () => {
  it('says so through its logger when the hub closes its connection for good (another process took its agentId over), not only to on("error") listeners', async () => {
    const hub = await startHub();
    const logged: string[] = [];
    const logger = { error: (message: string) => void logged.push(message), warn: (message: string) => void logged.push(message) };
    const old = await agent(hub, { agentId: 'twin', agentType: 'w', logger });
    await old.onTask('t', () => ({ result: 1 }));
    const closed = deferred();
    old.connection.socket.once('disconnect', () => closed.resolve());
    // A second deployment of the same agent (a rolling restart that overlapped) registers the id.
    await agent(hub, { agentId: 'twin', agentType: 'w', logger: null });
    await closed.promise;
    // socket.io does not reconnect after a server-side disconnect: this process will take no work from now on.
    expect(old.connection.socket.active).toBe(false);
    expect(logged).toEqual([expect.stringContaining('twin')]);
  });

  it('stops when its registration after a reconnect is refused for good: its running handler is aborted and its connection closed', async () => {
    const file = join(tempDir(), 'tokens.json');
    writeFileSync(file, JSON.stringify(GRANTS), { mode: 0o600 });
    const hub = await startHub({ tokensFile: file, tokens: undefined });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'refused after a reconnect' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'rebound', agentType: 'w', logger: null });
    const started = deferred();
    const aborted = deferred<unknown>();
    await worker.onTask('held', async (_task, ctx) => {
      started.resolve();
      ctx.signal.addEventListener('abort', () => aborted.resolve(ctx.signal.reason));
      await new Promise(() => undefined); // works until told to stop
    });
    const errors: HubError[] = [];
    worker.on('error', (error) => void errors.push(error));
    await wf.createWorkOrder({ id: 'job', taskType: 'held' });
    await started.promise;
    // The agent token is bound to another agent id: the hub reconnects the agent, and refuses its registration.
    writeFileSync(file, JSON.stringify(GRANTS.map((grant) => (grant.token === TOKENS.agent ? { ...grant, agentId: 'someone-else' } : grant))));
    await hub.reloadTokens();
    // Its report could never be sent (it would wait for a registration that never comes): the handler is told to stop.
    expect(await aborted.promise).toMatchObject({ code: 'STALE_ATTEMPT', message: expect.stringContaining('someone-else') });
    expect(errors.map((error) => error.code)).toEqual(['FORBIDDEN']);
    expect(worker.activeTasks).toBe(0);
    expect(worker.connection.socket.active).toBe(false);
  });
});

describe('a typed task whose schema has an async refinement', () => {
  it('runs the handler with the parsed input instead of failing every attempt as an input mismatch', async () => {
    const hub = await startHub({ backoffBaseMs: 10, backoffMaxMs: 20 });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'async schema' });
    await wf.start();
    const logged: string[] = [];
    const worker = await agent(hub, { agentId: 'typed', agentType: 'w', logger: { error: (message) => void logged.push(message) } });
    // e.g. a check that a referenced file exists
    const Input = z.object({ file: z.string().refine(async (file) => file.endsWith('.csv'), 'not a csv file') });
    await worker.onTask('load', { input: Input }, (task) => ({ result: task.input.file }));
    await wf.createWorkOrder({ id: 'job', taskType: 'load', input: { file: 'a.csv' }, maxAttempts: 2 });
    const done = await untilWorkflow(hub, wf.id, (w) => ['completed', 'failed'].includes(w.workOrders.job!.state), 'job ended');
    expect({ state: done.workOrders.job!.state, error: done.workOrders.job!.error, logged }).toEqual({ state: 'completed', error: null, logged: [] });
  });
});

describe('a running task across a reconnect', () => {
  it('has its lease renewed as soon as the agent is registered again, not at its next beat, which may come after the lease ran out', async () => {
    // The hub's clock stands still but for the test's moves; the background sweep is left to its longest interval.
    const clock = { now: 1_767_261_600_000 };
    const hub = await startHub({ sweepIntervalMs: 60_000, graceMs: 600_000 }, { clock: () => clock.now });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'a network blip during a long lease' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'blip', agentType: 'w' });
    const started = deferred();
    const release = deferred();
    await worker.onTask('long', async () => {
      started.resolve();
      await release.promise;
      return { result: 'ok' };
    });
    // A lease of 10 minutes: the SDK beats every 200 s, so no beat comes within the test by itself.
    await wf.createWorkOrder({ id: 'job', taskType: 'long', timeouts: { leaseMs: 600_000 } });
    await started.promise;
    const token = hub.state.workflows.get(wf.id)!.workOrders.job!.attempt!.token;
    const leases = (hub.state as unknown as HubState).work.leases;
    await untilTrue(() => leases.has(token), 'the attempt runs');
    const leaseEnd = leases.get(token)!;
    // Away for most of the lease, then back.
    clock.now += 500_000;
    const reconnected = deferred();
    worker.connection.socket.once('connect', () => reconnected.resolve());
    worker.connection.socket.io.engine.close();
    await reconnected.promise;
    await untilTrue(() => leases.get(token) === clock.now + 600_000, 'the lease renewed on return');
    // The lease it had before it left is over: the attempt goes on.
    clock.now = leaseEnd;
    expect(await hub.dispatch({ type: 'hub.sweep', input: {}, actor: { role: 'system', name: 'test' } })).toMatchObject({ lapsedLeases: 0 });
    release.resolve();
    expect((await untilOrder(hub, wf.id, 'job', 'completed')).attempts).toBe(1);
  });
});
