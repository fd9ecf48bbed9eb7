/*
 * Type-level specification of the command seam between the contract, the transports and the
 * domain, checked by `npx tsc --noEmit -p .` (vitest does not run it). Each `@ts-expect-error` is a
 * mistake the types must catch; tsc fails if one is accepted.
 */
import type { Actor } from '../server/domain/machinery/actor.ts';
import { commandHandler, type Dispatcher } from '../server/transport/command-handler.ts';
import type { Handler, Handlers } from '../server/transport/namespaces.ts';

const ADMIN: Actor = { role: 'admin', name: 'types' };

/** Returns what it builds, so that no line below is an unused local (which tsc would also flag). */
export function commandSeam(hub: Dispatcher, handlers: Handlers<'control'>): unknown[] {
  // A contract event served by the command of the same name fits its slot in the handler table.
  const start: Handler<'control', 'workflow.start'> = commandHandler(hub, 'workflow.start');
  const step: Handler<'control', 'step.add'> = commandHandler(hub, 'step.add');

  const { 'step.add': _served, ...withoutStepAdd } = handlers;
  // @ts-expect-error every contract event needs a handler: step.add has none here
  const incomplete: Handlers<'control'> = withoutStepAdd;

  // @ts-expect-error the kpi.add command takes a KPI, not the step the step.add event carries
  const wrongPayload: Handler<'control', 'step.add'> = commandHandler(hub, 'kpi.add');

  // @ts-expect-error same payload (a workflow id), but workflow.start answers a status, not the summary
  const wrongReply: Handler<'control', 'workflow.summary'> = commandHandler(hub, 'workflow.start');

  // @ts-expect-error workflow.get is a read: the domain has no command of that name to dispatch
  const noCommand = commandHandler(hub, 'workflow.get');

  // @ts-expect-error the workflow.fail command needs the workflow's id
  const missingField = hub.dispatch({ type: 'workflow.fail', input: { reason: 'no id' }, actor: ADMIN });

  // @ts-expect-error progress is a number from 0 to 100, not a string
  const wrongField = hub.dispatch({ type: 'task.progress', input: { workflowId: 'w', workOrderId: 'o', attemptToken: 't', progress: '50' }, actor: ADMIN });

  return [start, step, incomplete, wrongPayload, wrongReply, noCommand, missingField, wrongField];
}
