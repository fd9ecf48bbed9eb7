import type { Mirror } from 'switchboard/client';

/**
 * Resolves with a mirror's state once `predicate` holds for it, checked on every change the hub
 * streams (no polling); rejects after `timeoutMs` with `what` in the message.
 * @example const done = await when(sub, (wf) => wf.workOrderCounts.completed === 3, 'three orders completed');
 */
export function when<T>(mirror: Mirror<T>, predicate: (state: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const holds = () => mirror.state !== undefined && predicate(mirror.state);
    if (holds()) return resolve(mirror.state as T);
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    const stop = mirror.on('change', () => {
      if (!holds()) return;
      stop();
      clearTimeout(timer);
      resolve(mirror.state as T);
    });
  });
}
