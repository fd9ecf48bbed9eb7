import type { HubState } from './domain/machinery/state.ts';
import type { WorkflowCatalog } from './domain/work/workflow-catalog.ts';
import type { WorkflowCatalogs } from './domain/work/workflow-catalogs.ts';
import { countOrders } from './domain/work/order-lists.ts';
import { TimeSlice } from './time-slice.ts';

/** Orders filed between two looks at the clock (about 0.3 ms of work). */
const ORDERS_PER_LOOK = 256;
/** A catalog of up to this many orders is built at once: about a millisecond, less than a turn's wait. */
const BUILT_AT_ONCE = 1000;

/** Builds in progress, one per catalog, shared by whoever waits on it. */
const builds = new WeakMap<WorkflowCatalog, Promise<void>>();

/**
 * Gets a workflow's catalog built, for its views: undefined when it is built (now, if it was
 * small) or the workflow is not in `state`; else the build in progress, started if need be, which
 * goes on a slice of a few milliseconds per turn of the event loop while the writer goes on. It
 * resolves when the build ends: built, or dropped by a rebuild of the index (a rollback), when
 * the caller asks again and waits on a new build. Callers check again once it resolves, in the
 * same turn as they read the catalog.
 * @example for (let build = catalogBuild(state, id); build; build = catalogBuild(state, id)) await build;
 */
export function catalogBuild(state: HubState, workflowId: string): Promise<void> | undefined {
  const workflow = state.workflows.get(workflowId);
  if (!workflow) return undefined;
  const catalogs = state.work.catalogs;
  const catalog = catalogs.building(workflow);
  if (catalog.built) return undefined;
  if (countOrders(workflow) <= BUILT_AT_ONCE) {
    catalogs.of(workflow);
    return undefined;
  }
  let build = builds.get(catalog);
  if (!build) builds.set(catalog, (build = buildInSlices(catalogs, catalog)));
  return build;
}

/** Builds a catalog a slice per turn, until it is built or no longer kept. */
async function buildInSlices(catalogs: WorkflowCatalogs, catalog: WorkflowCatalog): Promise<void> {
  const slice = new TimeSlice();
  while (!catalog.buildStep(ORDERS_PER_LOOK)) {
    if (!slice.spent) continue;
    await slice.next();
    if (!catalogs.holds(catalog)) return;
  }
}
