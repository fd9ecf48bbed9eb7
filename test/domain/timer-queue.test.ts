import { describe, expect, it } from 'vitest';
import { TimerQueue, type Timed } from '../../server/domain/work/timer-queue.ts';
import { emptyState } from '../../server/domain/machinery/state.ts';
import { Transaction } from '../../server/domain/machinery/transaction.ts';
import { random } from '../helpers/random.ts';

const timer = (order: number, at: number): Timed => ({ at, workflowId: 'wf', workOrderId: `o${order}`, key: `wf\u0000o${order}`, slot: -1 });

describe('a queue of order timers (domain)', () => {
  it('hands over the timers still standing in the order they are due, as a heap that kept every entry would, and holds no other', () => {
    for (const seed of [1, 2, 3]) {
      const next = random(seed);
      const queue = new TimerQueue<Timed>();
      // The model: every entry set and not taken out, and which one stands for each order.
      const all: Timed[] = [];
      const standing = new Map<string, Timed>();
      for (let step = 0; step < 5_000; step++) {
        const roll = next();
        const order = Math.floor(next() * 100);
        if (roll < 0.55) {
          // Due within 2,000 steps; all due times differ: the order of ties is the heap's, not a promise.
          const entry = timer(order, (step + Math.floor(next() * 2_000)) * 10_000 + step);
          queue.push(entry);
          all.push(entry);
          standing.set(entry.key, entry);
        } else if (roll < 0.95) {
          queue.end(timer(order, 0).key);
          standing.delete(timer(order, 0).key);
        } else {
          // Taken out up to a time, as the sweep does: the model's standing ones among them, and no other.
          const until = step * 10_000;
          const taken: Timed[] = [];
          while (queue.size > 0 && queue.peek()!.at <= until) taken.push(queue.pop()!);
          const due = all.filter((entry) => entry.at <= until).sort((a, b) => a.at - b.at);
          for (const entry of due) all.splice(all.indexOf(entry), 1);
          const stood = due.filter((entry) => standing.get(entry.key) === entry);
          expect(taken).toEqual(stood);
          for (const entry of stood) standing.delete(entry.key);
        }
        expect({ size: queue.size, live: queue.live }).toEqual({ size: standing.size, live: standing.size });
      }
    }
  });

  it('holds again, once a command or a savepoint is undone, the timers its orders have again, for the rebuild that follows to read', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const next = random(seed);
      const queue = new TimerQueue<Stamped>();
      // The documents: which timer each order has (as a backoff's notBefore says), changed and undone with the command.
      const documents = new Map<string, number>();
      let stamps = 0;
      const write = (tx: Transaction, key: string, stamp: number | undefined) => {
        const was = documents.get(key);
        if (stamp === undefined) documents.delete(key);
        else documents.set(key, stamp);
        tx.onUndo(() => (was === undefined ? documents.delete(key) : documents.set(key, was)));
      };
      for (let command = 0; command < 300; command++) {
        const tx = new Transaction(emptyState());
        // Set anew, ended, or taken when due and put back (the sweep's put-off: the same entry; heldUntil: a copy due later).
        const change = () => {
          for (let step = 0, steps = 1 + Math.floor(next() * 12); step < steps; step++) {
            const roll = next();
            const order = Math.floor(next() * 20);
            if (roll < 0.4) {
              const entry = { ...timer(order, Math.floor(next() * 1e6)), stamp: ++stamps };
              write(tx, entry.key, entry.stamp);
              queue.push(entry, tx);
            } else if (roll < 0.7) {
              write(tx, timer(order, 0).key, undefined);
              queue.end(timer(order, 0).key, tx);
            } else {
              const due = queue.pop();
              if (due) queue.push(roll < 0.85 ? due : { ...due, at: due.at + 1 }, tx);
            }
          }
        };
        // A savepoint undone alone is followed by a rebuild, as in the sweep; so is a command undone.
        if (next() < 0.3) {
          if (!tx.isolate(() => (change(), next() < 0.5 ? undefined : fail())).ok) expect(rebuild(queue, documents)).toEqual([]);
        } else change();
        if (next() < 0.5) continue;
        tx.rollback();
        expect(rebuild(queue, documents)).toEqual([]);
      }
    }
  });
});

/** A timer, with which of its order's timers it is. */
interface Stamped extends Timed {
  stamp: number;
}

/** What WorkIndex.rebuild does with a queue: takes every entry out, in the order due, and sets anew the timers the documents name, at the times read. Returns those not found. */
function rebuild(queue: TimerQueue<Stamped>, documents: Map<string, number>): string[] {
  const held: Stamped[] = [];
  for (let entry; (entry = queue.pop()); ) held.push(entry);
  expect(held.map((entry) => entry.at)).toEqual(held.map((entry) => entry.at).sort((a, b) => a - b));
  expect(new Set(held).size).toBe(held.length);
  const read = new Map(held.map((entry) => [`${entry.key}@${entry.stamp}`, entry]));
  const lost: string[] = [];
  for (const [key, stamp] of documents) {
    const entry = read.get(`${key}@${stamp}`);
    if (entry) queue.push({ ...entry });
    else lost.push(`${key}@${stamp}`);
  }
  expect(queue.size).toBe(documents.size - lost.length);
  return lost;
}

function fail(): never {
  throw new Error('a change that fails');
}
