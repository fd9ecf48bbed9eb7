import * as z from 'zod';
import { Id, Text, Timestamp } from './common.ts';
import { DataStatus } from './data.ts';

/** A run that linked inputs to outputs: a finished work order, a derivation, or an explicit link. */
export const Transformation = z.object({
  id: Id,
  /** The work order's task type, `derive`, or the operation named in lineage.link. */
  operation: z.string(),
  description: Text,
  inputs: z.array(Id),
  outputs: z.array(Id),
  workOrderId: Id.nullable(),
  agentId: Id.nullable(),
  attempt: z.number().int().nullable(),
  startedAt: Timestamp.nullable(),
  endedAt: Timestamp,
  status: z.enum(['completed', 'failed']),
  error: Text.nullable(),
  /** The token name or subsystem that recorded it. */
  recordedBy: z.string(),
});
export type Transformation = z.infer<typeof Transformation>;

/** Links input references to output references through an operation (control). */
export const LinkLineageInput = z.strictObject({
  workflowId: Id,
  id: Id.optional(),
  operation: z.string().trim().min(1).max(200),
  description: Text.default(''),
  inputs: z.array(Id).min(1).max(1000),
  outputs: z.array(Id).min(1).max(1000),
  workOrderId: Id.optional(),
  agentId: Id.optional(),
});

/** How many entries one lineage reply may hold: nodes and edges of a walk (each), or entries of a graph page. */
const LineageLimit = z.number().int().min(1).max(2000);

/** Upstream or downstream of one reference; no maxDepth means to any depth. `limit` caps the nodes, and the edges, of the reply. */
export const LineageQuery = z.strictObject({
  workflowId: Id,
  dataId: Id,
  maxDepth: z.number().int().min(1).max(100_000).optional(),
  limit: LineageLimit.default(1000),
});

/** A page of a workflow's lineage graph: at most `limit` nodes, transformations and edges in all, from `cursor` on. */
export const LineageGraphQuery = z.strictObject({
  workflowId: Id,
  limit: LineageLimit.default(1000),
  /** nextCursor of the previous page. */
  cursor: z.string().max(1000).optional(),
});

/** A reference in a lineage answer and its distance from the one asked about. */
export const LineageNode = z.object({ id: Id, path: z.string(), dataType: z.string(), status: DataStatus, depth: z.number().int() });
export type LineageNode = z.infer<typeof LineageNode>;

/** One input → output pair of a transformation. */
export const LineageEdge = z.object({
  from: Id,
  to: Id,
  transformationId: Id,
  operation: z.string(),
  workOrderId: Id.nullable(),
});
export type LineageEdge = z.infer<typeof LineageEdge>;

/** What a traversal found: nodes by depth (the root at 0) and the edges it followed. */
export const LineageTraversal = z.object({
  version: z.number().int(),
  root: Id,
  direction: z.enum(['upstream', 'downstream']),
  nodes: z.array(LineageNode),
  edges: z.array(LineageEdge),
  /** True when maxDepth, `limit` or the hub's bound on one walk stopped it before the end of the graph. */
  truncated: z.boolean(),
});
export type LineageTraversal = z.infer<typeof LineageTraversal>;

/**
 * A page of a workflow's lineage graph: every reference (depth 0) in creation order, then every
 * transformation, each followed by its edges; nextCursor asks for the next page, null at the end.
 */
export const LineageGraph = z.object({
  version: z.number().int(),
  nodes: z.array(LineageNode),
  edges: z.array(LineageEdge),
  transformations: z.array(Transformation),
  nextCursor: z.string().nullable(),
});

export const OpenLineageRef = z.strictObject({ workflowId: Id, workOrderId: Id });

const Facets = z.record(z.string(), z.object({ _producer: z.string(), _schemaURL: z.string() }).catchall(z.unknown()));
const Dataset = z.object({ namespace: z.string(), name: z.string(), facets: Facets });

/** An OpenLineage 2-0-2 RunEvent describing one finished work order. */
export const OpenLineageRunEvent = z.object({
  eventType: z.enum(['COMPLETE', 'FAIL', 'ABORT']),
  eventTime: z.string(),
  run: z.object({ runId: z.string(), facets: Facets }),
  job: z.object({ namespace: z.string(), name: z.string(), facets: Facets }),
  inputs: z.array(Dataset),
  outputs: z.array(Dataset),
  producer: z.string(),
  schemaURL: z.string(),
});
export type OpenLineageRunEvent = z.infer<typeof OpenLineageRunEvent>;
