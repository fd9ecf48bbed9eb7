import { describe, expect, it, vi } from 'vitest';
import { ProgressStream } from '../client-sdk/progress-stream.ts';
import type { RequestOf } from '../shared/contract.ts';
import { HubError } from '../shared/errors.ts';

type Update = RequestOf<'agent', 'task.progress'>;
const update = (progress: number): Update => ({ workflowId: 'wf_1', workOrderId: 'wo_1', attemptToken: 'att_1', progress });

/** A send whose calls are recorded and answered by the test. */
function controlledSend() {
  const sent: Update[] = [];
  const answers: Array<() => void> = [];
  let announce: () => void = () => undefined;
  const started = () => new Promise<void>((resolve) => (announce = resolve));
  const send = (u: Update) =>
    new Promise<void>((resolve) => {
      sent.push(u);
      answers.push(resolve);
      announce();
    });
  return { sent, answers, started, send };
}

/** A stream over a controlled send, with one update pushed and already on the wire. */
async function streamWithOneSent(progress: number) {
  const wire = controlledSend();
  const stream = new ProgressStream(wire.send, 0);
  const sent = wire.started();
  const first = stream.push(update(progress));
  await sent;
  return { wire, stream, first };
}

describe('ProgressStream (SDK)', () => {
  it('sends an update at once when none is in flight, with no timer in between', () => {
    const wire = controlledSend();
    const stream = new ProgressStream(wire.send, 0);
    void stream.push(update(10));
    expect(wire.sent.map((u) => u.progress)).toEqual([10]);
  });

  it('coalesces the updates pushed while one is in flight into the newest, sent when the first is answered', async () => {
    const { wire, stream, first } = await streamWithOneSent(10);
    const waiting = [20, 30, 40].map((p) => stream.push(update(p)));
    expect(wire.sent).toHaveLength(1);
    const next = wire.started();
    wire.answers[0]!();
    await first;
    await next;
    expect(wire.sent.map((u) => u.progress)).toEqual([10, 40]);
    wire.answers[1]!();
    await expect(Promise.all(waiting)).resolves.toEqual([undefined, undefined, undefined]);
    expect(wire.sent).toHaveLength(2);
  });

  it('keeps the message and details (the checkpoint) of a coalesced update that the newer one leaves out', async () => {
    const { wire, stream, first } = await streamWithOneSent(10);
    const checkpoint = stream.push({ ...update(20), message: 'loading', details: { offset: 600 } });
    const later = stream.push(update(30));
    const next = wire.started();
    wire.answers[0]!();
    await first;
    await next;
    expect(wire.sent[1]).toEqual({ ...update(30), message: 'loading', details: { offset: 600 } });
    wire.answers[1]!();
    await Promise.all([checkpoint, later]);
  });

  it('with an interval, holds the next update back until the interval has passed since the last send', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    try {
      const wire = controlledSend();
      const stream = new ProgressStream(wire.send, 1000);
      const first = stream.push(update(10));
      wire.answers[0]!();
      await first;
      const second = stream.push(update(20));
      await vi.advanceTimersByTimeAsync(999);
      expect(wire.sent).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(wire.sent.map((u) => u.progress)).toEqual([10, 20]);
      wire.answers[1]!();
      await second;
    } finally {
      vi.useRealTimers();
    }
  });

  it('on stop, rejects the updates still waiting with one error made for them, and sends nothing more', async () => {
    const { wire, stream, first } = await streamWithOneSent(10);
    const second = stream.push(update(20)); // waits behind the update in flight
    let made = 0;
    stream.stop(() => (made++, new Error('the task has finished')));
    await expect(second).rejects.toThrow('the task has finished');
    wire.answers[0]!();
    await expect(first).resolves.toBeUndefined();
    expect(made).toBe(1);
    expect(wire.sent.map((u) => u.progress)).toEqual([10]);
  });

  it('after stop, sends nothing more: an update in flight that failed is not sent again, and a later push is refused', async () => {
    const sent: number[] = [];
    let fail: (error: Error) => void = () => undefined;
    const stream = new ProgressStream((u) => {
      sent.push(u.progress);
      return new Promise((_, reject) => (fail = reject));
    }, 0);
    const inFlight = stream.push(update(10));
    stream.stop(() => new HubError('INVALID_TRANSITION', 'the task has finished'));
    // The connection dropped under it: before stop it would be sent again once the connection is back.
    fail(new HubError('DISCONNECTED', 'the connection dropped'));
    await expect(inFlight).rejects.toMatchObject({ code: 'INVALID_TRANSITION' });
    await expect(stream.push(update(20))).rejects.toMatchObject({ code: 'INVALID_TRANSITION' });
    expect(sent).toEqual([10]);
  });

  it('does not make the error when nobody waits', async () => {
    const { wire, stream, first } = await streamWithOneSent(50);
    wire.answers[0]!();
    await first;
    let made = 0;
    stream.stop(() => (made++, new Error('unused')));
    expect(made).toBe(0);
    expect(wire.sent).toHaveLength(1);
  });
});
