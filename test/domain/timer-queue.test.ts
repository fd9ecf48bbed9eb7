import { describe, expect, it } from 'vitest';
import { TimerQueue, type Timed } from '../../server/domain/work/timer-queue.ts';
import { random } from '../helpers/random.ts';

const timer = (order: number, at: number): Timed => ({ at, workflowId: 'wf', workOrderId: `o${order}`, key: `wf\u0000o${order}` });

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
});
