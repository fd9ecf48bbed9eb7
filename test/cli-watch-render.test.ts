import { describe, expect, it } from 'vitest';
import type { SummaryView } from '../shared/schemas/views.ts';
import type { ClusterInfo } from '../server/index.ts';
import { dayAndClock, table } from '../server/cli/common.ts';
import { bar, plainLine, plainNode, sample, screenLines, type Screen } from '../server/cli/watch-render.ts';

const ZERO = { pending: 0, blocked: 0, queued: 0, offered: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };

/** A summary view with what `status --watch` reads of it. */
function view(changes: Partial<SummaryView> & { counts?: Partial<typeof ZERO> }): SummaryView {
  const { counts, ...rest } = changes;
  return { id: 'wf_x', userQuery: 'q', status: 'in_progress', failureReason: null, progress: 0, workOrderCounts: { ...ZERO, ...counts }, ...rest } as SummaryView;
}

const node = (nodeId: string, role: 'leader' | 'follower'): ClusterInfo['nodes'][number] => ({ nodeId, role, url: `http://${nodeId}:4700`, version: 7, seenMsAgo: 1000 });
const cluster = (nodes: ClusterInfo['nodes']): ClusterInfo => ({ nodeId: nodes[0]!.nodeId, role: nodes[0]!.role, leader: null, epoch: nodes.length > 1 ? 1 : 0, version: 7, nodes });

describe('status --watch rendering', () => {
  it('computes completed orders per second from two samples, and says nothing of a rate at the first', () => {
    const first = sample(view({ counts: { completed: 10 } }), 1_000, undefined);
    expect(first.throughput).toBeNull();
    const second = sample(view({ progress: 40, counts: { completed: 14, queued: 3, running: 2, failed: 1, cancelled: 2 } }), 3_000, first);
    expect(second.throughput).toBe(2);
    expect(plainLine(second)).toMatch(/^\d\d:\d\d:\d\d wf_x in_progress 40% queued=3 running=2 completed=14 failed=1 cancelled=2 2\.0\/s$/);
    expect(plainLine(first)).toMatch(/ completed=10 failed=0 -\/s$/);
  });

  it('names the reason of a failed workflow on its plain line and under its row', () => {
    const failed = sample(view({ status: 'failed', failureReason: 'out of disk' }), 1_000, undefined);
    expect(plainLine(failed)).toContain('wf_x failed 0% queued=0 running=0 completed=0 failed=0 -/s reason="out of disk"');
    const screen: Screen = { url: 'http://hub', at: 1_000, intervalMs: 1000, cluster: undefined, workflows: [failed], problem: undefined };
    expect(screenLines(screen, 120, 40)).toContain('  failed: out of disk');
  });

  it('prints what clients wrote with its control characters and bidirectional overrides made harmless', () => {
    const hostile = 'title\u001b]0;pwned\u0007 csi\u009b2J rtl\u202etxt.exe tab\tline\nend';
    const shown = 'title?]0;pwned? csi?2J rtl?txt.exe tab line end';
    const failed = sample(view({ status: 'failed', userQuery: hostile, failureReason: hostile }), 1_000, undefined);
    const screen: Screen = { url: 'http://hub', at: 1_000, intervalMs: 1000, cluster: undefined, workflows: [failed], problem: undefined };
    const printed = [plainLine(failed), ...screenLines(screen, 200, 40), table(['NOTE'], [[hostile]])].join('\n');
    expect(printed).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(printed).toContain(`failed: ${shown}`);
    expect(table(['NOTE'], [[hostile]])).toBe(`NOTE\n${shown}`);
  });

  it('draws the progress as a bar, and lists a cluster’s nodes only when there are several', () => {
    expect(bar(40, 10)).toBe('[####......]');
    expect(bar(140, 4)).toBe('[####]');
    const workflows = [sample(view({ progress: 50, counts: { queued: 2 } }), 1_000, undefined)];
    const single: Screen = { url: 'http://hub', at: 1_000, intervalMs: 1000, cluster: cluster([node('a', 'leader')]), workflows, problem: undefined };
    expect(screenLines(single, 120, 40).join('\n')).not.toContain('NODE');
    const three = { ...single, cluster: cluster([node('a', 'leader'), node('b', 'follower'), node('c', 'follower')]) };
    const lines = screenLines(three, 120, 40);
    expect(lines.filter((line) => /^[abc]\s+(leader|follower)\s+http:\/\/[abc]:4700\s+7\s+1 s ago$/.test(line))).toHaveLength(3);
    expect(lines.join('\n')).toMatch(/wf_x\s+in_progress\s+\[##########\.{10}\]\s+50%\s+-\/s\s+q/);
    expect(lines).toContain('  orders: 2 queued, 0 running, 0 completed, 0 failed');
    expect(plainNode(node('b', 'follower'))).toBe('node b follower http://b:4700');
    // Nearly done is not done: 99.7% reads 99%, not 100%.
    expect(plainLine(sample(view({ progress: 99.7 }), 1_000, undefined))).toContain(' 99% ');
  });

  it('fits the screen: lines cut to its width, and a last line saying how many more there are', () => {
    const workflows = Array.from({ length: 30 }, (_, i) => sample(view({ id: `wf_${i}`, userQuery: 'a long question '.repeat(10) }), 1_000, undefined));
    const lines = screenLines({ url: 'http://hub', at: 1_000, intervalMs: 1000, cluster: undefined, workflows, problem: 'cannot reach the hub' }, 60, 12);
    expect(lines).toHaveLength(12);
    expect(lines.every((line) => line.length <= 60)).toBe(true);
    expect(lines[1]).toBe('! cannot reach the hub');
    expect(lines.at(-1)).toMatch(/^… \d+ more lines/);
  });
});

describe('times in the CLI', () => {
  it("shows a time of today as its time of day, and one of another day with its local date", () => {
    const now = new Date(2026, 11, 7, 15, 30, 0).getTime();
    expect(dayAndClock(new Date(2026, 11, 7, 9, 5, 7).getTime(), now)).toBe('09:05:07');
    expect(dayAndClock(new Date(2026, 11, 6, 23, 59, 59).getTime(), now)).toBe('2026-12-06 23:59:59');
    expect(dayAndClock(new Date(2025, 0, 2, 3, 4, 5).getTime(), now)).toBe('2025-01-02 03:04:05');
  });
});
