import type { Socket } from 'socket.io';
import type { ReplyOf } from '../../shared/contract.ts';
import type { ReportReply } from '../../shared/schemas/report.ts';
import { INLINE_REPLY_BYTES } from '../../shared/schemas/transfer.ts';
import { getWorkflow } from '../domain/machinery/queries.ts';
import { workflowSmallerThan, type HubState } from '../domain/machinery/state.ts';
import { requireWorkflow } from '../domain/machinery/context.ts';
import { sharedJsonParts } from '../pinned-json.ts';
import type { RenderedReport } from '../reports/report-renderer.ts';
import type { Transfer } from '../../shared/schemas/transfer.ts';
import type { EncodedJson } from './encoded-json.ts';
import { partsOf, type Transfers } from './transfers.ts';

/** A rendered report as a reply: its body inline up to 1 MB, else a transfer held for `socket`. */
export function reportReply(report: RenderedReport, socket: Socket, transfers: Transfers): ReportReply {
  const { parts, bytes, ...meta } = report;
  if (bytes <= INLINE_REPLY_BYTES) return { ...meta, body: Buffer.concat(parts).toString('utf8') };
  return { ...meta, transfer: transfers.offer(socket, parts) };
}

/** A workflow as a reply (workflow.get, an archived workflow's snapshot): inline when small, else its JSON serialised in slices as a transfer. */
export async function workflowReply(state: HubState, workflowId: string, socket: Socket, transfers: Transfers): Promise<ReplyOf<'control', 'workflow.get'>> {
  const workflow = requireWorkflow(state, workflowId);
  if (workflowSmallerThan(workflow, INLINE_REPLY_BYTES)) return getWorkflow(state, workflowId);
  // Pinned before the first await: the version of the moment it was asked (shared with the reads at that version).
  const { version, parts } = await sharedJsonParts(state, workflowId);
  return { version, transfer: transfers.offer(socket, parts) };
}

/** A view's value as a subscription snapshot's body: inline up to 1 MB (a page of big orders can pass it), else a transfer held for `socket`. */
export function viewBody(value: EncodedJson, socket: Socket, transfers: Transfers): { state: EncodedJson } | { transfer: Transfer } {
  // Bytes are at most three per UTF-16 unit: only a long text is measured.
  if (value.json.length * 3 <= INLINE_REPLY_BYTES || Buffer.byteLength(value.json) <= INLINE_REPLY_BYTES) return { state: value };
  return { transfer: transfers.offer(socket, partsOf(Buffer.from(value.json))) };
}
