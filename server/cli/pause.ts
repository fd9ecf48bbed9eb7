import { parseArgs } from 'node:util';
import type { WorkflowPause, WorkflowStatus } from '../../shared/schemas/workflow.ts';
import { printable } from '../../shared/printable.ts';
import { changeOnHub, CliError, HUB_FLAGS, hubAddress, refuseEmptyFlags } from './common.ts';

export const PAUSE_HELP = `switchboard pause — stop offering a workflow's work orders until it is resumed

Usage: switchboard pause WORKFLOW [--reason TEXT] [--url URL] [--token TOKEN] [--data-dir DIR] [--json]

  None of the workflow's orders is offered until switchboard resume: attempts already out go on,
  orders still queue, free agents take other workflows' work, and timers keep running. Run again,
  it changes nothing. See workflow.pause.
  --reason TEXT   why, shown with the workflow and in the hub's log
  --url, --token, --data-dir   as for switchboard status (the token must be an admin token)
  --json          print what happened as JSON: { changed, workflowId, status, paused, queued }
`;

export const RESUME_HELP = `switchboard resume — offer a paused workflow's work orders again

Usage: switchboard resume WORKFLOW [--url URL] [--token TOKEN] [--data-dir DIR] [--json]

  Its queued orders are offered again at once, in queue order. Run again, or on a workflow that is
  not paused, it changes nothing. See workflow.resume.
  --url, --token, --data-dir   as for switchboard status (the token must be an admin token)
  --json          print what happened as JSON: { changed, workflowId, status, paused, queued }
`;

/** What a pause or resume did, as `--json` prints it. */
interface PauseOutcome {
  /** False when the workflow already was as asked: left as it was. */
  changed: boolean;
  workflowId: string;
  status: WorkflowStatus;
  paused: WorkflowPause | null;
  /** Its queued orders: those held back (pause) or offered again (resume). */
  queued: number;
}

/** `switchboard pause WORKFLOW [--reason TEXT]`: sends workflow.pause to a running hub and says what it did, or its refusal. */
export function pause(args: string[]): Promise<void> {
  return pauseOrResume('pause', args);
}

/** `switchboard resume WORKFLOW`: sends workflow.resume to a running hub and says what it did, or its refusal. */
export function resume(args: string[]): Promise<void> {
  return pauseOrResume('resume', args);
}

async function pauseOrResume(command: 'pause' | 'resume', args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...HUB_FLAGS, json: { type: 'boolean' }, reason: { type: 'string' } },
  });
  if (values.help) return void process.stdout.write(command === 'pause' ? PAUSE_HELP : RESUME_HELP);
  refuseEmptyFlags(values);
  if (command === 'resume' && values.reason !== undefined) throw new CliError('--reason goes with switchboard pause');
  const [workflowId, ...extra] = positionals;
  if (!workflowId) throw new CliError(`say which workflow: switchboard ${command} WORKFLOW`);
  if (extra.length) throw new CliError(`one workflow at a time: switchboard ${command} WORKFLOW (also given: ${extra.join(' ')})`);
  await changeOnHub<PauseOutcome>(await hubAddress(values), values.json, {
    noun: `the ${command} of ${workflowId}`,
    verb: `${command} ${workflowId}`,
    async make(control) {
      const wf = control.workflow(workflowId);
      // Read first: the reply alone cannot tell a pause made now from one found in place.
      const before = await wf.summary();
      const reply = command === 'pause' ? await wf.pause(values.reason) : await wf.resume();
      const changed = (before.paused === null) !== (reply.paused === null);
      return { changed, workflowId, status: reply.status, paused: reply.paused, queued: before.workOrderCounts?.queued ?? 0 };
    },
    describe,
  });
}

/** The outcome in a line. */
function describe({ changed, workflowId, paused, queued }: PauseOutcome): string {
  const orders = `${queued} queued work order${queued === 1 ? '' : 's'}`;
  if (paused) {
    // The reason is a client's text: printed as is, its escape sequences would reach the terminal.
    const why = `by ${printable(paused.by)} at ${new Date(paused.at).toISOString()}${paused.reason === null ? '' : ` (${printable(paused.reason)})`}`;
    if (!changed) return `workflow ${workflowId} was already paused ${why}: left as it was`;
    return `workflow ${workflowId} paused ${why}: its ${orders} and those queued later are not offered until switchboard resume ${workflowId}`;
  }
  if (!changed) return `workflow ${workflowId} is not paused: left as it was`;
  return `workflow ${workflowId} resumed: its ${orders} are offered again`;
}
