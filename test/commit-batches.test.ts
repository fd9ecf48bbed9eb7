import { describe, expect, it } from 'vitest';
import { CreateWorkflowInput } from '../shared/schemas/workflow.ts';
import { StateWriter } from '../server/state-writer.ts';
import { ADMIN, SETTINGS } from './helpers/domain.ts';
import { MemoryStore } from './helpers/memory-store.ts';

describe('group commit', () => {
  it('writes a busy turn in batches of at most 32 commands, in order, each acked after its write', async () => {
    const store = new MemoryStore();
    const hub = await StateWriter.open({ store, settings: SETTINGS });
    const { workflow } = await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id: 'w', userQuery: 'q' }), actor: ADMIN });
    await hub.dispatch({ type: 'workflow.start', input: { workflowId: workflow.id }, actor: ADMIN });
    const before = store.batches.length;
    // Each command in its own callback of one turn, as requests read from many sockets are.
    const writesSeenByAck: number[] = [];
    const replies = await Promise.all(
      Array.from(
        { length: 100 },
        (_, i) =>
          new Promise<number>((resolve, reject) =>
            setImmediate(() =>
              hub.dispatch({ type: 'workflow.progress', input: { workflowId: 'w', stage: 's', percentage: i }, actor: ADMIN }).then((reply) => {
                writesSeenByAck.push(store.batches.length - before);
                resolve(reply.version);
              }, reject),
            ),
          ),
      ),
    );
    const batches = store.batches.slice(before);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(100);
    expect(Math.max(...batches)).toBeLessThanOrEqual(32);
    expect(batches.length).toBeGreaterThanOrEqual(4);
    // Versions follow dispatch order, and the first commands were acknowledged before the last was written.
    expect(replies).toEqual([...replies].sort((a, b) => a - b));
    expect(writesSeenByAck[0]).toBeLessThan(batches.length);
    await hub.close();
  });

  it('takes a due snapshot while writes keep coming: from memory only when nothing applied waits to be written', async () => {
    const store = new MemoryStore({ slowWrites: true, snapshotEvery: 3 });
    const hub = await StateWriter.open({ store, settings: SETTINGS });
    await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id: 'w', userQuery: 'q' }), actor: ADMIN });
    // A command every turn while each write takes a turn: the write loop never runs dry.
    let dispatched = 0;
    const replies: Array<Promise<unknown>> = [];
    await new Promise<void>((resolve) => {
      const next = () => {
        replies.push(hub.dispatch({ type: 'workflow.progress', input: { workflowId: 'w', stage: 's', percentage: dispatched }, actor: ADMIN }));
        if (++dispatched < 40) setImmediate(next);
        else resolve();
      };
      next();
    });
    const whileBusy = store.snapshots.length;
    expect(whileBusy).toBeGreaterThan(0);
    expect(store.snapshots.slice(0, whileBusy).some((s) => !s.fromMemory)).toBe(true);
    await Promise.all(replies);
    await hub.settle();
    // Quiet: the next due snapshot is taken from the documents in memory.
    for (let i = 0; i < 3; i++) await hub.dispatch({ type: 'workflow.progress', input: { workflowId: 'w', stage: 's', percentage: 50 + i }, actor: ADMIN });
    expect(store.snapshots.at(-1)).toMatchObject({ fromMemory: true });
    await hub.close();
  });
});
