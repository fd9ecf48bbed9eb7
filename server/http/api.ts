import { HubError } from '../../shared/errors.ts';
import { ListWorkflowsInput } from '../../shared/schemas/workflow.ts';
import { listWorkflows, workflowSummary } from '../domain/queries.ts';
import type { Hub } from '../hub.ts';
import { canSee } from '../transport/auth.ts';
import type { HttpRequest, Route } from './router.ts';

const READERS = ['admin', 'monitor'] as const;

/** The workflow id of the route, if the request's token may see it. */
function visibleWorkflow(request: HttpRequest): string {
  const workflowId = request.params[0]!;
  if (request.grant && !canSee(request.grant, workflowId)) throw new HubError('FORBIDDEN', `this token cannot see workflow ${workflowId}`);
  return workflowId;
}

/** The REST routes: health, and read-only views of workflows for plain HTTP clients. */
export function apiRoutes(hub: Hub, startedAt: number): Route[] {
  return [
    {
      method: 'GET',
      pattern: /^\/healthz$/,
      roles: [],
      handle: () => ({ body: { ok: true, uptimeMs: hub.now() - startedAt, workflows: hub.state.workflows.size } }),
    },
    {
      method: 'GET',
      pattern: /^\/api\/workflows$/,
      roles: READERS,
      handle: (request) => {
        const parsed = ListWorkflowsInput.safeParse({
          status: request.query.get('status') ?? undefined,
          limit: request.query.has('limit') ? Number(request.query.get('limit')) : undefined,
          cursor: request.query.get('cursor') ?? undefined,
        });
        if (!parsed.success) throw new HubError('VALIDATION', parsed.error.message);
        return { body: listWorkflows(hub.state, parsed.data, (id) => !request.grant || canSee(request.grant, id)) };
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/workflows\/([^/]+)\/summary$/,
      roles: READERS,
      handle: (request) => ({ body: workflowSummary(hub.state, visibleWorkflow(request), hub.now()) }),
    },
  ];
}
