import type { ControlClient } from '../../client-sdk/index.ts';
import { ANSWER_INLINE_BYTES } from '../../server/transport/patch-stream.ts';

/**
 * Creates workflows of about 800 KB each (four orders of 200 KB of input): inline alone, together
 * past the bytes one subscribeAll answer holds inline. Returns their ids, in creation order.
 */
export async function workflowsPastAnswerBound(client: ControlClient): Promise<string[]> {
  const input = 'x'.repeat(200_000);
  const ids: string[] = [];
  while (ids.length * 800_000 < ANSWER_INLINE_BYTES + 3_000_000) {
    const wf = await client.createWorkflow({ userQuery: `mid ${ids.length}` });
    await wf.createWorkOrders([0, 1, 2, 3].map((i) => ({ id: `o${i}`, taskType: 'nobody-serves-this', input })));
    ids.push(wf.id);
  }
  return ids;
}
