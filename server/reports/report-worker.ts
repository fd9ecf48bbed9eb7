import { parentPort } from 'node:worker_threads';
import type { Agent } from '../../shared/schemas/agent.ts';
import type { ReportFormat } from '../../shared/schemas/report.ts';
import type { Workflow } from '../../shared/schemas/workflow.ts';
import { renderReports } from './report.ts';
import { yieldCpuToOthers } from '../worker-threads.ts';

/** What the hub sends: pieces of a workflow's JSON, then what to render from it. */
export type RenderJob =
  | { job: number; chunk: Uint8Array }
  | { job: number; render: { version: number; agents: Record<string, Agent>; formats: ReportFormat[]; generatedBy?: string } };

/** A rendered report without its body, which travels as a transferred buffer. */
export interface RenderedMeta {
  format: ReportFormat;
  workflowId: string;
  version: number;
  contentType: string;
  fileName: string;
  hash: string;
  body: ArrayBuffer;
  byteOffset: number;
  bytes: number;
}

export type RenderResult = { job: number; ok: true; reports: RenderedMeta[] } | { job: number; ok: false; message: string };

// Renders are background work: this thread yields the CPU to the hub's own (the writer, the sockets).
yieldCpuToOthers();

/** The workflow's UTF-8 bytes received so far, per job. */
const pieces = new Map<number, Uint8Array[]>();

// Worker entry: parses the workflow and renders it off the hub's event loop.
parentPort?.on('message', (message: RenderJob) => {
  if ('chunk' in message) {
    let list = pieces.get(message.job);
    if (!list) pieces.set(message.job, (list = []));
    list.push(message.chunk);
    return;
  }
  const text = Buffer.concat(pieces.get(message.job) ?? []).toString('utf8');
  pieces.delete(message.job);
  let result: RenderResult;
  const transfer: ArrayBuffer[] = [];
  try {
    const workflow = JSON.parse(text) as Workflow;
    const { version, agents, formats, generatedBy } = message.render;
    const reports = renderReports({ workflow, version, agents, ...(generatedBy === undefined ? {} : { generatedBy }) }, formats);
    result = {
      job: message.job,
      ok: true,
      reports: reports.map(({ body, ...meta }) => {
        const bytes = Buffer.from(body, 'utf8');
        // A big buffer has an ArrayBuffer of its own; a small one may share the pool, so it is copied out.
        const own = bytes.byteLength === bytes.buffer.byteLength ? bytes : Buffer.from(bytes);
        transfer.push(own.buffer as ArrayBuffer);
        return { ...meta, body: own.buffer as ArrayBuffer, byteOffset: own.byteOffset, bytes: own.byteLength };
      }),
    };
  } catch (error) {
    result = { job: message.job, ok: false, message: (error as Error).message };
  }
  parentPort!.postMessage(result, transfer);
});
