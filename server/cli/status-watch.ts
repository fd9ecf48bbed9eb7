import { setTimeout as delay } from 'node:timers/promises';
import { connectMonitor, type Mirror, type MonitorClient } from '../../client-sdk/monitor.ts';
import { HubError } from '../../shared/errors.ts';
import type { SummaryView } from '../../shared/schemas/views.ts';
import type { WorkflowHeader } from '../../shared/schemas/workflow.ts';
import type { ClusterInfo } from '../cluster/cluster-node.ts';
import { allPages, CliError, connectionRefusal, getFromHub } from './common.ts';
import { plainLine, plainNode, plainState, sample, screenLines, type Screen, type WorkflowSample } from './watch-render.ts';

/** What `status --watch` follows, how often it refreshes, and for how long. */
export interface WatchOptions {
  address: { url: string; token: string };
  intervalMs: number;
  /** Stop after this many refreshes; undefined: until SIGINT or SIGTERM. */
  count: number | undefined;
  /** The workflows to follow; empty: every pending or in-progress one, those created later included. */
  workflowIds: string[];
}

/** Where refreshes go: redrawn in place on a terminal, plain lines otherwise. */
interface Output {
  refresh(screen: Screen): void;
  close(): void;
}

/** On a terminal: the whole screen redrawn in place (home, each line cleared to its end, then the rest). */
function terminalOutput(): Output {
  const out = process.stdout;
  let last: Screen | undefined;
  const draw = () => {
    if (!last) return;
    const lines = screenLines(last, out.columns || 80, out.rows || 24);
    out.write(`\x1b[H${lines.map((line) => `${line}\x1b[K`).join('\n')}\x1b[J`);
  };
  const onResize = () => {
    out.write('\x1b[2J');
    draw();
  };
  // The cursor hidden and the screen cleared once: later frames overwrite, so nothing flickers.
  out.write('\x1b[?25l\x1b[2J');
  out.on('resize', onResize);
  return {
    refresh(screen) {
      last = screen;
      draw();
    },
    close() {
      out.off('resize', onResize);
      out.write('\x1b[?25h\n');
    },
  };
}

/** Off a terminal: a line per workflow (and per cluster node) whose line changed since it was last printed. */
function plainOutput(): Output {
  const printed = new Map<string, string>();
  let problem: string | undefined;
  const time = (at: number) => new Date(at).toTimeString().slice(0, 8);
  return {
    refresh(screen) {
      if (screen.problem !== problem && screen.problem) process.stderr.write(`${time(screen.at)} ${screen.problem}\n`);
      problem = screen.problem;
      const lines: string[] = [];
      const nodes = screen.cluster?.nodes ?? [];
      for (const node of nodes.length > 1 ? nodes : []) {
        const text = plainNode(node);
        if (printed.get(`node ${node.nodeId}`) === text) continue;
        printed.set(`node ${node.nodeId}`, text);
        lines.push(`${time(screen.at)} ${text}`);
      }
      const shown = new Set<string>();
      for (const workflow of screen.workflows) {
        shown.add(workflow.id);
        const text = plainState(workflow);
        if (printed.get(workflow.id) === text) continue;
        printed.set(workflow.id, text);
        lines.push(plainLine(workflow));
      }
      // One no longer followed (ended long ago) prints nothing more: its last line is forgotten with it.
      for (const id of printed.keys()) if (!id.startsWith('node ') && id !== '' && !shown.has(id)) printed.delete(id);
      // Said once, so that a watch with nothing to follow yet does not look stuck.
      if (screen.workflows.length === 0 && !printed.has('')) {
        printed.set('', '');
        lines.push(`${time(screen.at)} no pending or in-progress workflows yet`);
      }
      if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n');
    },
    close() {},
  };
}

/** A workflow in these states changes no more. */
const ENDED = new Set(['completed', 'failed', 'cancelled']);

/** Ended workflows a watch of every live one still shows (the latest to end, under the live ones). */
const RECENTLY_ENDED = 10;

/**
 * The workflows a monitor follows, each by its summary view (small, and patched live by the hub),
 * in the order they were found. One that ended is let go once sampled, its last summary kept: the
 * hub bounds the views a connection follows, and a long watch sees many workflows come and go.
 * Following every live workflow (`named` false), the ended ones go under the live ones, and only
 * the RECENTLY_ENDED latest are kept: else, on a busy hub, the screen filled with ended workflows
 * and the watch's memory grew for as long as it ran.
 */
class FollowedWorkflows {
  private readonly followed = new Map<string, { mirror: Mirror<SummaryView> | undefined; last: SummaryView | undefined; endedAt?: number }>();
  private readonly samples = new Map<string, WorkflowSample>();

  constructor(
    private readonly monitor: MonitorClient,
    private readonly named: boolean,
  ) {}

  /** Follows the workflows not followed yet; one gone meanwhile (`NOT_FOUND`) is skipped unless `required`. */
  async follow(ids: string[], required: boolean): Promise<void> {
    const fresh = ids.filter((id) => !this.followed.has(id));
    await Promise.all(
      fresh.map(async (id) => {
        try {
          this.followed.set(id, { mirror: await this.monitor.subscribe(id, { view: { kind: 'summary' } }), last: undefined });
        } catch (error) {
          if (error instanceof HubError && error.code === 'NOT_FOUND' && !required) return;
          throw new CliError(`cannot follow workflow ${id}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }),
    );
  }

  /** A sample of every followed workflow at `at`, with its throughput since the previous one. */
  sampleAll(at: number): WorkflowSample[] {
    const taken: WorkflowSample[] = [];
    for (const [id, followed] of this.followed) {
      const state = followed.mirror?.state ?? followed.last;
      if (!state) continue;
      const next = sample(state, at, this.samples.get(id));
      this.samples.set(id, next);
      taken.push(next);
      if (followed.mirror && ENDED.has(state.status)) {
        const { doc } = followed.mirror;
        followed.last = structuredClone(state);
        followed.mirror = undefined;
        followed.endedAt = at;
        void this.monitor.unsubscribe(doc).catch(() => undefined);
      }
    }
    if (this.named) return taken;
    const live = taken.filter((s) => this.followed.get(s.id)!.endedAt === undefined);
    // The latest to end first (among those seen ending at once, the last found first).
    const ended = taken.filter((s) => this.followed.get(s.id)!.endedAt !== undefined).reverse();
    ended.sort((a, b) => this.followed.get(b.id)!.endedAt! - this.followed.get(a.id)!.endedAt!);
    // Each is shown at least once as it ended (the plain output's last line of it): those ended now come first.
    const endedNow = ended.filter((s) => this.followed.get(s.id)!.endedAt === at).length;
    for (const { id } of ended.splice(Math.max(RECENTLY_ENDED, endedNow))) {
      this.followed.delete(id);
      this.samples.delete(id);
    }
    return [...live, ...ended];
  }
}

/** The ids of the pending and in-progress workflows the hub lists now. */
async function liveWorkflowIds(address: WatchOptions['address']): Promise<string[]> {
  const lists = await Promise.all(['pending', 'in_progress'].map((status) => allPages<WorkflowHeader>(address, `/api/workflows?status=${status}`)));
  return lists.flat().map((w) => w.id);
}

/**
 * `switchboard status --watch`: follows the workflows through a monitor connection and refreshes
 * every `intervalMs` (on a terminal, in place; otherwise a plain line per change), until SIGINT,
 * SIGTERM or `count` refreshes.
 */
export async function watchStatus(options: WatchOptions): Promise<void> {
  const { address } = options;
  let monitor: MonitorClient;
  try {
    monitor = await connectMonitor({ url: address.url, token: address.token });
  } catch (error) {
    throw connectionRefusal(error);
  }
  const followed = new FollowedWorkflows(monitor, options.workflowIds.length > 0);
  let output: Output | undefined;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await followed.follow(options.workflowIds, true);
    output = process.stdout.isTTY ? terminalOutput() : plainOutput();
    for (let refreshes = 0; !stop.signal.aborted; ) {
      // Paced on performance.now(): a wall clock stepped back would hold the next refresh for the length of the step.
      const started = performance.now();
      let problem: string | undefined;
      let cluster: ClusterInfo | undefined;
      try {
        if (options.workflowIds.length === 0) await followed.follow(await liveWorkflowIds(address), false);
        cluster = (await (await getFromHub(address, '/cluster')).json()) as ClusterInfo;
      } catch (error) {
        // The hub may come back: the monitor reconnects on its own, and the next refresh tries again.
        problem = error instanceof Error ? error.message : String(error);
      }
      const at = Date.now();
      output.refresh({ url: address.url, at, intervalMs: options.intervalMs, cluster, workflows: followed.sampleAll(at), problem });
      if (options.count !== undefined && ++refreshes >= options.count) break;
      await delay(Math.max(0, started + options.intervalMs - performance.now()), undefined, { signal: stop.signal }).catch(() => undefined);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    output?.close();
    await monitor.close();
  }
}
