import * as z from 'zod';
import { contract, pushEvents } from './contract.ts';
import { BATCH_EVENT, BatchReply, BatchRequest, envelopeOf, ErrorEnvelope } from './envelope.ts';
import { Agent } from './schemas/agent.ts';
import { DataReference } from './schemas/data.ts';
import { Kpi } from './schemas/kpis.ts';
import { LineageEdge, LineageNode, OpenLineageRunEvent, Transformation } from './schemas/lineage.ts';
import { PatchOperation } from './schemas/monitor.ts';
import { Objective } from './schemas/objectives.ts';
import { Report } from './schemas/report.ts';
import { Step } from './schemas/steps.ts';
import { WorkflowSummary } from './schemas/summary.ts';
import { Assignment, WorkOrder } from './schemas/work-order.ts';
import { StageProgress, Workflow, WorkflowHeader } from './schemas/workflow.ts';

/** Where `npm run schema` writes the document, relative to the repository root. */
export const SCHEMA_FILE = 'protocol/switchboard.schema.json';

/** A JSON Schema object (draft 2020-12), as plain JSON. */
export type JsonSchema = { [keyword: string]: unknown };

/**
 * Entities that appear in many replies, published once under their own name in `$defs` and
 * referenced from the replies. Only reply-side schemas belong here: a schema with defaults reads
 * differently as a request (input) and as a reply (output), and one name can hold only one form.
 */
const ENTITIES: Array<[z.ZodType, string, string]> = [
  [Workflow, 'Workflow', 'The authoritative state of one workflow: the document monitors mirror and patches describe.'],
  [WorkflowHeader, 'WorkflowHeader', 'The short form of a workflow used in lists.'],
  [WorkflowSummary, 'WorkflowSummary', 'Status, durations, counts, progress, objectives and KPIs of a workflow (get_workflow_summary).'],
  [StageProgress, 'StageProgress', 'Progress of one named stage.'],
  [Step, 'Step', 'One execution step of a workflow.'],
  [Objective, 'Objective', 'A goal of the workflow with a free-text target.'],
  [Kpi, 'Kpi', 'A measurable indicator with a numeric target and its recorded history.'],
  [WorkOrder, 'WorkOrder', 'A unit of work for one agent.'],
  [Agent, 'Agent', 'An agent in the hub-wide pool.'],
  [DataReference, 'DataReference', 'A data reference of a workflow with provenance and version history.'],
  [Transformation, 'Transformation', 'A run that linked input references to output references.'],
  [LineageNode, 'LineageNode', 'A reference in a lineage answer and its distance from the one asked about.'],
  [LineageEdge, 'LineageEdge', 'One input → output pair of a transformation.'],
  [OpenLineageRunEvent, 'OpenLineageRunEvent', 'An OpenLineage 2-0-2 RunEvent describing one finished work order.'],
  [Report, 'Report', 'A rendered report of one workflow at one version.'],
  [Assignment, 'Assignment', 'An offer of one attempt of a work order, pushed to an agent.'],
  [PatchOperation, 'PatchOperation', 'One RFC 6902 operation: add, replace or remove.'],
];

const entities = z.registry<{ id: string; description: string }>();
for (const [schema, id, description] of ENTITIES) entities.add(schema, { id, description });

/**
 * Replies are plain z.objects that may gain fields in later versions, so their published schema
 * leaves additional properties open (zod's output form would close them). Requests keep exactly
 * the strictness the hub enforces.
 */
function openReplyObjects(ctx: { zodSchema: z.core.$ZodTypes; jsonSchema: z.core.JSONSchema.BaseSchema }): void {
  const def = ctx.zodSchema._zod.def;
  if (def.type === 'object' && def.catchall === undefined) delete ctx.jsonSchema.additionalProperties;
}

/**
 * The JSON Schema keywords a schema's `.meta()` gives for a rule zod checks in code (a refine):
 * `metadata: entities` leaves the global registry out of the conversion, so they are added here.
 */
function refinedRules(ctx: { zodSchema: z.core.$ZodTypes; jsonSchema: z.core.JSONSchema.BaseSchema }): void {
  const meta = z.globalRegistry.get(ctx.zodSchema as unknown as z.ZodType);
  // A keyword given as undefined is taken away (a bound zod's conversion states that the rule replaces).
  for (const [keyword, value] of Object.entries(meta ?? {})) {
    if (value === undefined) delete (ctx.jsonSchema as Record<string, unknown>)[keyword];
    else (ctx.jsonSchema as Record<string, unknown>)[keyword] = value;
  }
}

/** Converts one schema and moves its named entities into the shared `$defs`, refusing two forms under one name. */
function convert(schema: z.ZodType, io: 'input' | 'output', defs: Record<string, JsonSchema>, description: string): JsonSchema {
  const { $schema: _, $defs: nested = {}, ...json } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io,
    metadata: entities,
    unrepresentable: 'any',
    // Requests carry the rules zod checks in code; replies are open (later hubs may add fields).
    override: io === 'input' ? refinedRules : openReplyObjects,
  }) as JsonSchema & { $defs?: Record<string, JsonSchema> };
  for (const [id, entity] of Object.entries(nested)) {
    const known = defs[id];
    if (known && JSON.stringify(known) !== JSON.stringify(entity)) throw new Error(`entity ${id} has two different JSON Schema forms; it cannot be shared`);
    defs[id] = entity;
  }
  return { description, ...json };
}

/** Sorts object keys recursively where the order carries no meaning (the `$defs` tables). */
function sortedKeys<T>(table: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(table).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The JSON Schema (draft 2020-12) of the wire protocol, built from the contract table: for each
 * request event `<namespace>:<event>:request` (what a client sends) and `:reply` (the `data` of
 * a successful ack); for each push `<namespace>:<event>:payload` and, if it expects an ack,
 * `:reply`; the ack envelope as `Ack` and `AckError`; shared entities under their own names.
 * @example const schema = contractJsonSchema(); schema.$defs['agent:task.progress:request'];
 */
export function contractJsonSchema(): JsonSchema & { $defs: Record<string, JsonSchema> } {
  const defs: Record<string, JsonSchema> = {};
  for (const [namespace, events] of Object.entries(contract)) {
    for (const [event, spec] of Object.entries(events)) {
      defs[`${namespace}:${event}:request`] = convert(spec.request, 'input', defs, spec.doc);
      defs[`${namespace}:${event}:reply`] = convert(spec.reply, 'output', defs, `The \`data\` of a successful ack of ${event}.`);
    }
  }
  for (const [namespace, events] of Object.entries(pushEvents)) {
    for (const [event, spec] of Object.entries(events as Record<string, { payload: z.ZodType; reply: z.ZodType | null; doc: string }>)) {
      defs[`${namespace}:${event}:payload`] = convert(spec.payload, 'output', defs, `Pushed by the hub: ${spec.doc}`);
      if (spec.reply) defs[`${namespace}:${event}:reply`] = convert(spec.reply, 'input', defs, `The client's ack of ${event}.`);
    }
  }
  defs.Ack = convert(envelopeOf(z.unknown()), 'output', defs, 'The envelope every request is acknowledged with; `data` is the event’s reply.');
  defs.AckError = convert(ErrorEnvelope, 'output', defs, 'A refused request: a documented code, a message, and for VALIDATION the issues.');
  defs.BatchRequest = convert(BatchRequest, 'input', defs, `The payload of event \`${BATCH_EVENT}\` (any namespace): [event, payload] pairs, each served in order as if sent alone.`);
  defs.BatchReply = convert(BatchReply, 'output', defs, `The \`data\` of a successful ack of \`${BATCH_EVENT}\`: one ack per request of the batch, in its order.`);
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'urn:switchboard:protocol',
    title: 'Switchboard wire protocol',
    description:
      'Payloads and replies of every socket.io event of the hub, generated from shared/contract.ts by `npm run schema`; do not edit. See PROTOCOL.md.',
    $defs: sortedKeys(defs),
  };
}

/** The committed form of the schema: 2-space JSON with a trailing newline. */
export function contractJsonSchemaText(): string {
  return JSON.stringify(contractJsonSchema(), null, 2) + '\n';
}
