import { HubError } from '../../shared/errors.ts';
import { validationError } from '../transport/validation.ts';
import { ListAgentsInput } from '../../shared/schemas/agent.ts';
import { Id } from '../../shared/schemas/common.ts';
import { DataFilter } from '../../shared/schemas/data.ts';
import { ListWorkflowsInput } from '../../shared/schemas/workflow.ts';
import { searchData } from '../domain/data/data-search.ts';
import { listWorkflows } from '../domain/machinery/queries.ts';
import type { StateWriter } from '../state-writer.ts';
import type { WorkflowReads } from '../workflow-reads.ts';
import { CONTENT_SECURITY_POLICY } from '../reports/page-assets.ts';
import type { ReportRenderer } from '../reports/report-renderer.ts';
import { listAgents } from '../domain/work/agents.ts';
import { canSee } from '../transport/auth.ts';
import type { HttpRequest, Route } from './router.ts';

const READERS = ['admin', 'monitor'] as const;

/**
 * A report's policy as a header: the HTML page's own (in its meta tag too, for the file on disk),
 * and no framing, which only a header can say. Any format: a browser may be shown any of them.
 */
const REPORT_POLICY = `${CONTENT_SECURITY_POLICY}; frame-ancestors 'none'`;

/** The workflow id of the route (VALIDATION when it is not an id), if the request's token may see it. */
function visibleWorkflow(request: HttpRequest): string {
  const workflowId = request.params[0]!;
  if (!Id.safeParse(workflowId).success) throw new HubError('VALIDATION', `not a workflow id: ${JSON.stringify(workflowId.slice(0, 100))}`);
  if (request.grant && !canSee(request.grant, workflowId)) throw new HubError('FORBIDDEN', `this token cannot see workflow ${workflowId}`);
  return workflowId;
}

const FILTER_TEXT = ['dataType', 'text', 'agentId', 'workOrderId', 'source', 'status', 'sort', 'order', 'cursor'] as const;
const FILTER_NUMBERS = ['limit', 'createdAfter', 'createdBefore'] as const;
/** Parameters that may repeat (tags), and `token`, which the router reads. */
const FILTER_OTHERS = ['tag', 'tags', 'token'] as const;
const FILTER_SINGLE: ReadonlySet<string> = new Set([...FILTER_TEXT, ...FILTER_NUMBERS]);
const FILTER_KNOWN: ReadonlySet<string> = new Set([...FILTER_SINGLE, ...FILTER_OTHERS]);

/** VALIDATION for a parameter a query does not know or one given twice: either would be silently ignored, widening the answer. */
function requireKnownParameters(query: URLSearchParams, what: string, known: ReadonlySet<string>, single: ReadonlySet<string>): void {
  const seen = new Set<string>();
  for (const key of query.keys()) {
    if (!known.has(key)) throw new HubError('VALIDATION', `unknown ${what} parameter ${JSON.stringify(key.slice(0, 100))}; known: ${[...known].join(', ')}`);
    if (single.has(key) && seen.has(key)) throw new HubError('VALIDATION', `${what} parameter ${key} is given more than once${single === known ? '' : '; only tag may repeat'}`);
    seen.add(key);
  }
}

/** What the routes that take no parameters know: the token, which the router reads. */
const TOKEN_ONLY: ReadonlySet<string> = new Set(['token']);

/** A whole number written in decimal digits; anything else (hex, exponents, blanks) is left as text, for the schema to refuse by what it expected. */
function queryInteger(text: string): number | string {
  return /^[0-9]{1,16}$/.test(text) ? Number(text) : text;
}

/** ISO 8601 as JavaScript writes it: a date, optionally a time, optionally a zone. */
const ISO_TIME = /^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?$/;

/**
 * A time as milliseconds since the epoch or an ISO 8601 date; anything else is left as text (Date.parse alone reads "foo 1" as
 * 2001, and rolls 2024-02-31 over to March).
 */
function queryTime(text: string): number | string {
  const ms = queryInteger(text);
  if (typeof ms === 'number') return ms;
  const parts = ISO_TIME.exec(text);
  if (!parts) return text;
  const [year, month, day, hour = 0, minute = 0, second = 0] = parts.slice(1).map((part) => (part === undefined ? undefined : Number(part)));
  const daysInMonth = new Date(Date.UTC(year!, month!, 0)).getUTCDate();
  if (month! < 1 || month! > 12 || day! < 1 || day! > daysInMonth || hour > 23 || minute > 59 || second > 59) return text;
  const at = Date.parse(text);
  return Number.isNaN(at) ? text : at;
}

/** The limit, cursor and other single parameters of a page's query, refusing any other. */
function pageQuery(query: URLSearchParams, what: string, text: readonly string[]): Record<string, unknown> {
  const known = new Set([...text, 'limit', 'cursor', 'token']);
  requireKnownParameters(query, what, known, known);
  const raw: Record<string, unknown> = {};
  for (const key of text) if (query.has(key)) raw[key] = query.get(key);
  if (query.has('limit')) raw.limit = queryInteger(query.get('limit')!);
  if (query.has('cursor')) raw.cursor = query.get('cursor');
  return raw;
}

/**
 * The data.search filter from query parameters, parsed by the same schema as the socket event.
 * `tag` may repeat (or `tags` be comma-separated); times are ms since the epoch or ISO dates.
 * An unknown or repeated parameter is VALIDATION, as an unknown field of the event is.
 */
export function dataFilterFromQuery(workflowId: string, query: URLSearchParams): DataFilter {
  requireKnownParameters(query, 'data filter', FILTER_KNOWN, FILTER_SINGLE);
  const raw: Record<string, unknown> = { workflowId };
  for (const key of FILTER_TEXT) if (query.has(key)) raw[key] = query.get(key);
  for (const key of FILTER_NUMBERS) {
    const text = query.get(key);
    if (text !== null) raw[key] = key === 'limit' ? queryInteger(text) : queryTime(text);
  }
  const tags = [...query.getAll('tag'), ...query.getAll('tags').flatMap((list) => list.split(','))].filter((tag) => tag !== '');
  if (tags.length) raw.tags = tags;
  const parsed = DataFilter.safeParse(raw);
  if (!parsed.success) throw validationError('data filter', parsed.error);
  return parsed.data;
}

/** The REST routes: health, and read-only views of workflows for plain HTTP clients; `startedAt` is the hub's start on performance.now(). */
export function apiRoutes(hub: StateWriter, reads: WorkflowReads, renderer: ReportRenderer, startedAt: number, writeFailure: () => string | undefined = () => undefined): Route[] {
  return [
    {
      method: 'GET',
      pattern: /^\/healthz$/,
      roles: [],
      handle: async () => {
        // A hub that refuses every change until it restarts is not healthy: a probe should restart it.
        const failure = writeFailure();
        if (failure) throw new HubError('UNAVAILABLE', `the hub refuses every change until it restarts: ${failure}`);
        await reads.archive.ready();
        return { body: { ok: true, uptimeMs: Math.round(performance.now() - startedAt), workflows: hub.state.workflows.size, archivedWorkflows: reads.archive.size } };
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/workflows$/,
      roles: READERS,
      handle: async (request) => {
        const parsed = ListWorkflowsInput.safeParse(pageQuery(request.query, 'workflow list', ['status', 'order']));
        if (!parsed.success) throw validationError('workflow list query', parsed.error);
        await reads.archive.ready();
        return { body: listWorkflows(hub.state, parsed.data, (id) => !request.grant || canSee(request.grant, id), reads.archive) };
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/workflows\/([^/]+)\/report\.(json|md|html)$/,
      roles: READERS,
      handle: async (request) => {
        requireKnownParameters(request.query, 'report', TOKEN_ONLY, TOKEN_ONLY);
        const format = ({ json: 'json', md: 'markdown', html: 'html' } as const)[request.params[1] as 'json' | 'md' | 'html'];
        const workflowId = visibleWorkflow(request);
        const report = (await reads.read(workflowId, (state) => renderer.render(state, workflowId, [format])))[0]!;
        const headers = { etag: `"${report.hash}"`, 'x-switchboard-version': String(report.version), 'content-security-policy': REPORT_POLICY };
        return { body: report.parts, contentType: report.contentType, headers };
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/agents$/,
      roles: READERS,
      handle: (request) => {
        const parsed = ListAgentsInput.safeParse(pageQuery(request.query, 'agent list', []));
        if (!parsed.success) throw validationError('agent list query', parsed.error);
        return { body: listAgents(hub.state, parsed.data) };
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/workflows\/([^/]+)\/summary$/,
      roles: READERS,
      handle: async (request) => {
        requireKnownParameters(request.query, 'workflow summary', TOKEN_ONLY, TOKEN_ONLY);
        const workflowId = visibleWorkflow(request);
        return { body: await reads.summary(workflowId, hub.now()) };
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/workflows\/([^/]+)\/data$/,
      roles: READERS,
      handle: async (request) => {
        const workflowId = visibleWorkflow(request);
        return { body: searchData(await reads.stateFor(workflowId), dataFilterFromQuery(workflowId, request.query)) };
      },
    },
  ];
}
