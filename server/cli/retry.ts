import { parseArgs } from 'node:util';
import type { WorkOrder } from '../../shared/schemas/work-order.ts';
import { changeOnHub, CliError, HUB_FLAGS, hubAddress, refuseEmptyFlags } from './common.ts';

export const RETRY_HELP = `switchboard retry — put a failed work order back in the queue, or offer a declined one again

Usage: switchboard retry WORKFLOW ORDER [--url URL] [--token TOKEN] [--data-dir DIR] [--json]

  A failed order is queued again (blocked while a dependency is unfinished) with a fresh budget of
  attempts; a queued one is offered again to the agents that declined it. See workOrder.retry.
  --url, --token, --data-dir   as for switchboard status (the token must be an admin token)
  --json          print what happened as JSON: { was, changed, forgottenDeclines, order }
`;

/** What a retry did, as `--json` prints it. */
interface RetryOutcome {
  /** The order's state before the retry. */
  was: WorkOrder['state'];
  /** False for a queued order that nobody declined and that waited out no backoff: left as it was. */
  changed: boolean;
  /** The agents whose declines were forgotten, so that they may be offered the order again. */
  forgottenDeclines: string[];
  order: WorkOrder;
}

/** `switchboard retry WORKFLOW ORDER`: sends workOrder.retry to a running hub and says what it did, or its refusal. */
export async function retry(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...HUB_FLAGS,
      json: { type: 'boolean' },
    },
  });
  if (values.help) return void process.stdout.write(RETRY_HELP);
  refuseEmptyFlags(values);
  const [workflowId, workOrderId, ...extra] = positionals;
  if (!workflowId || !workOrderId) throw new CliError('say which order: switchboard retry WORKFLOW ORDER');
  if (extra.length) throw new CliError(`one order at a time: switchboard retry WORKFLOW ORDER (also given: ${extra.join(' ')})`);
  await changeOnHub<RetryOutcome>(await hubAddress(values), values.json, {
    noun: `the retry of ${workOrderId} of ${workflowId}`,
    verb: `retry ${workOrderId} of ${workflowId}`,
    async make(control) {
      const wf = control.workflow(workflowId);
      // Read first: the reply alone cannot tell which declines were forgotten, nor a queued order left as it was.
      const before = await wf.getWorkOrder(workOrderId);
      const order = await wf.retryWorkOrder(workOrderId);
      const forgottenDeclines = before.declinedBy.filter((agentId) => !order.declinedBy.includes(agentId));
      const changed = before.state !== order.state || forgottenDeclines.length > 0 || before.notBefore !== order.notBefore;
      return { was: before.state, changed, forgottenDeclines, order };
    },
    describe: (outcome) => describe(workflowId, outcome),
  });
}

/** The outcome in a line or two: the state before and after, the attempts, the declines forgotten. */
function describe(workflowId: string, { was, changed, forgottenDeclines, order }: RetryOutcome): string {
  if (!changed) return `work order ${order.id} of ${workflowId} is ${order.state}, declined by no agent and waiting out no backoff: left as it was`;
  const lines = [`work order ${order.id} of ${workflowId}: ${was} -> ${order.state}`];
  const since = order.retried ? order.attempts - order.retried.attempts : order.attempts;
  lines.push(`  attempts: ${order.attempts} so far, ${since} of ${order.maxAttempts} since its last retry`);
  lines.push(forgottenDeclines.length ? `  declines forgotten: ${forgottenDeclines.join(', ')}` : '  declines forgotten: none (no agent had declined it)');
  return lines.join('\n');
}
