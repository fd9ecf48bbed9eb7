import type { Socket } from 'socket.io';
import { HubError } from '../../shared/errors.ts';
import type { Subscription } from '../../shared/schemas/monitor.ts';
import { isViewName, viewName, type ViewSpec } from '../../shared/schemas/views.ts';
import { AGENTS_DOC, versionOf, type HubState } from '../domain/machinery/state.ts';
import { workflowView } from '../domain/workflows/views.ts';
import { catalogBuild } from '../catalog-build.ts';
import type { StateWriter } from '../state-writer.ts';
import type { WorkflowReads } from '../workflow-reads.ts';
import type { ReportRenderer } from '../reports/report-renderer.ts';
import { canSee } from './auth.ts';
import { EncodedJson, holdsEncoded } from './encoded-json.ts';
import type { Handlers, Session } from './namespaces.ts';
import { room, type PatchStream } from './patch-stream.ts';
import { reportReply, viewBody, workflowReply } from './replies.ts';
import type { Transfers } from './transfers.ts';
import { checkViewBound, type ViewStreams } from './view-streams.ts';

/** What the `/monitor` handlers work with. */
export interface MonitorParts {
  hub: StateWriter;
  reads: WorkflowReads;
  stream: PatchStream;
  views: ViewStreams;
  renderer: ReportRenderer;
  transfers: Transfers;
}

/** Whether a session may see a document: the agent pool is visible to every monitor. */
function visible(session: Session, doc: string): boolean {
  return doc === AGENTS_DOC || canSee(session.grant, doc);
}

function requireVisible(session: Session, doc: string): void {
  if (!visible(session, doc)) throw new HubError('FORBIDDEN', `this token cannot see ${doc}`);
}

type Held = { version?: number | undefined; epoch?: string | undefined };

/** The state holding archived workflow `workflowId` alone, or NOT_FOUND. */
async function archivedState(reads: WorkflowReads, workflowId: string): Promise<HubState> {
  const state = await reads.stateFor(workflowId);
  if (!state.workflows.has(workflowId)) throw new HubError('NOT_FOUND', `workflow ${workflowId} does not exist`);
  return state;
}

/** The answer to a subscriber that already holds `version` in this epoch: no patches (an archived workflow never changes). */
function heldAlready(doc: string, held: Held, stream: PatchStream, version: number): Subscription | undefined {
  return stream.resumable(doc, held.epoch) && held.version === version ? { doc, epoch: stream.epoch, mode: 'patches', from: version, to: version, ops: [] } : undefined;
}

/** The final value of a view of an archived workflow (it never changes again), and no stream. */
async function archivedView(reads: WorkflowReads, workflowId: string, view: ViewSpec, held: Held, stream: PatchStream, socket: Socket, transfers: Transfers): Promise<Subscription> {
  const state = await archivedState(reads, workflowId);
  const doc = viewName(workflowId, view);
  const version = versionOf(state, workflowId);
  const unchanged = heldAlready(doc, held, stream, version);
  const { epoch } = stream;
  if (unchanged) return unchanged;
  // A state read from the archive starts with no catalog: a big one is built a slice per turn.
  for (let build = catalogBuild(state, workflowId); build; build = catalogBuild(state, workflowId)) await build;
  const value = workflowView(state, workflowId, view);
  return holdsEncoded({ doc, epoch, mode: 'snapshot', version, ...viewBody(new EncodedJson(JSON.stringify(value)), socket, transfers) });
}

/**
 * Answers a subscription to an archived workflow or one of its views from `read`, in the room of
 * `name`: joined before the read, so that the workflow's deletion from the archive (even meanwhile)
 * is told (`resync`); left again if the read fails and the socket was not in it before.
 */
async function inRoomOf(socket: Socket, name: string, read: () => Promise<Subscription>): Promise<Subscription> {
  const joined = socket.rooms.has(room(name));
  void socket.join(room(name));
  try {
    return await read();
  } catch (error) {
    if (!joined) void socket.leave(room(name));
    throw error;
  }
}

/** The final state of an archived workflow (a snapshot, or no patches when that version is held in this epoch). */
async function archivedDocument(reads: WorkflowReads, doc: string, held: Held, stream: PatchStream, socket: Socket, transfers: Transfers): Promise<Subscription> {
  const state = await archivedState(reads, doc);
  const version = versionOf(state, doc);
  const unchanged = heldAlready(doc, held, stream, version);
  const { epoch } = stream;
  if (unchanged) return unchanged;
  // A big one as a transfer, serialised in slices like a live one.
  const reply = await workflowReply(state, doc, socket, transfers);
  return reply.transfer ? { doc, epoch, mode: 'snapshot', version, transfer: reply.transfer } : { doc, epoch, mode: 'snapshot', version, state: reply.workflow };
}

/** The handlers of `/monitor`: subscriptions to live state, and read-only views. Nothing here changes state. */
export function monitorHandlers({ hub, reads, stream, views, renderer, transfers }: MonitorParts): Handlers<'monitor'> {
  return {
    subscribe: async (input, session, socket) => {
      requireVisible(session, input.doc);
      if (input.view) {
        if (input.doc === AGENTS_DOC) throw new HubError('VALIDATION', 'views are of workflows; @agents has none');
        const archived = () => {
          const name = viewName(input.doc, input.view!);
          checkViewBound(socket, input.doc, name);
          return inRoomOf(socket, name, () => archivedView(reads, input.doc, input.view!, input, stream, socket, transfers));
        };
        if (!hub.state.workflows.has(input.doc)) return archived();
        try {
          return holdsEncoded(await views.subscribe(socket, input.doc, input.view, input.version, input.epoch));
        } catch (error) {
          // Gone from memory while its catalog was being built (archived): the archive answers, with the final value.
          if (error instanceof HubError && !hub.state.workflows.has(input.doc)) return archived();
          throw error;
        }
      }
      if (input.doc !== AGENTS_DOC && !hub.state.workflows.has(input.doc)) {
        // An archived workflow never changes again: its final state, and no patches.
        return inRoomOf(socket, input.doc, () => archivedDocument(reads, input.doc, input, stream, socket, transfers));
      }
      return holdsEncoded(await stream.subscribe(socket, input.doc, input.version, input.epoch));
    },
    subscribeAll: async (input, session, socket) =>
      holdsEncoded({ docs: await stream.subscribeAll(socket, input.versions, input.epoch, (doc) => visible(session, doc), session.grant.workflows) }),
    unsubscribe: (input, _session, socket) => {
      if (isViewName(input.doc)) views.unsubscribe(socket, input.doc);
      else stream.unsubscribe(socket, input.doc);
      return {};
    },
    summary: async (input, session) => {
      requireVisible(session, input.workflowId);
      return reads.summary(input.workflowId, hub.now());
    },
    report: (input, session, socket) => {
      requireVisible(session, input.workflowId);
      return reads.read(input.workflowId, async (state) => reportReply((await renderer.render(state, input.workflowId, [input.format]))[0]!, socket, transfers));
    },
    'transfer.read': (input, _session, socket) => ({ data: transfers.read(socket, input.id, input.part) }),
  };
}
