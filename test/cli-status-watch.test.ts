import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { NonRetryableError } from '../client-sdk/index.ts';
import { MAX_VIEWS_PER_CONNECTION } from '../server/transport/view-streams.ts';
import { CLI, spawnCli } from './helpers/process.ts';
import { agent, control, startHub, TOKENS } from './helpers/hub.ts';

/** The plain lines `status --watch` printed for one workflow. */
const linesOf = (output: string, workflowId: string) => output.split('\n').filter((line) => line.split(' ')[1] === workflowId);

/** Whether util-linux's `script` is here to give the CLI a pseudo-terminal. */
const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;

/** One argument quoted for sh. */
const quoted = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;

describe('switchboard status --watch', () => {
  it('off a terminal prints a line per workflow whose progress or orders changed, with the orders completed per second', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const ended = await client.createWorkflow({ id: 'ended-before', userQuery: 'over before the watch' });
    await ended.cancel('not watched');
    const wf = await client.createWorkflow({ id: 'watched', userQuery: 'orders completing while watched' });
    await wf.start();
    await wf.updateProgress('work', 10);
    await wf.createWorkOrders([
      { id: 'one', taskType: 'work' },
      { id: 'two', taskType: 'work' },
      { id: 'bad', taskType: 'work', maxAttempts: 1 },
      { id: 'gpu', taskType: 'gpu-render' },
    ]);

    const watch = spawnCli(['status', '--watch', '--interval', '500', '--url', hub.url, '--token', TOKENS.monitor]);
    await watch.waitForOutput(/ watched /);
    expect(linesOf(watch.stdout(), 'watched')).toEqual([expect.stringMatching(/^\d\d:\d\d:\d\d watched in_progress 10% queued=4 running=0 completed=0 failed=0 unservable=4 -\/s$/)]);

    // Progress moves, orders complete and one fails while the watch runs; the refreshes a second apart show it.
    await wf.updateProgress('work', 60);
    const worker = await agent(hub, { agentId: 'worker', agentType: 'worker', logger: null });
    await worker.onTask('work', (task) => {
      if (task.workOrderId === 'bad') throw new NonRetryableError('cannot do this one');
      return { result: 'done' };
    });

    // However many refreshes it takes on a busy machine: a line where the workflow ended up.
    await watch.waitForOutput(/ watched in_progress 60% queued=1 running=0 completed=2 failed=1 unservable=1 \d+\.\d\/s\n/);
    watch.child.kill('SIGINT');
    expect(await watch.exited).toBe(0);
    const lines = linesOf(watch.stdout(), 'watched');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    // The refresh that first saw orders completed saw them completed during its interval: a rate above zero.
    const firstCompleted = lines.find((line) => !line.includes(' completed=0 '))!;
    expect(Number(/ (\d+\.\d)\/s$/.exec(firstCompleted)![1])).toBeGreaterThan(0);
    // A workflow that ended before the watch started is not followed.
    expect(watch.stdout()).not.toContain('ended-before');
  }, 60_000);

  it('follows a workflow created after it started, and exits cleanly at SIGINT', async () => {
    const hub = await startHub();
    const client = await control(hub);
    // With nothing to follow, it says so once rather than printing nothing.
    const idle = spawnCli(['status', '--watch', '--count', '3', '--interval', '100', '--url', hub.url, '--token', TOKENS.admin]);
    expect(await idle.exited).toBe(0);
    expect(idle.stdout()).toMatch(/^\d\d:\d\d:\d\d no pending or in-progress workflows yet\n$/);
    await (await client.createWorkflow({ id: 'early', userQuery: 'there from the start' })).start();
    const watch = spawnCli(['status', '--watch', '--interval', '100', '--url', hub.url, '--token', TOKENS.admin]);
    await watch.waitForOutput(/ early in_progress 0% /);
    await client.createWorkflow({ id: 'late', userQuery: 'created while watched' });
    await watch.waitForOutput(/ late pending 0% queued=0 running=0 completed=0 failed=0 /);
    watch.child.kill('SIGINT');
    expect(await watch.exited).toBe(0);
    // --count ends it on its own.
    const counted = spawnCli(['status', '--watch', '--count', '2', '--interval', '100', '--url', hub.url, '--token', TOKENS.admin]);
    expect(await counted.exited).toBe(0);
    expect(linesOf(counted.stdout(), 'early').length).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('lets go of the workflows that ended, so a long watch follows new ones past the hub\'s bound of views per connection', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const handles = [];
    for (let at = 0; at < MAX_VIEWS_PER_CONNECTION; at += 512) {
      const ids = Array.from({ length: Math.min(512, MAX_VIEWS_PER_CONNECTION - at) }, (_, i) => `wf-${at + i}`);
      handles.push(...(await Promise.all(ids.map((id) => client.createWorkflow({ id, userQuery: 'one of many' })))));
    }
    const watch = spawnCli(['status', '--watch', '--interval', '200', '--url', hub.url, '--token', TOKENS.monitor]);
    const last = `wf-${MAX_VIEWS_PER_CONNECTION - 1}`;
    await watch.waitForOutput(new RegExp(` ${last} pending `));
    // As many workflows as a connection may follow views, followed, then all ended.
    for (let at = 0; at < handles.length; at += 512) await Promise.all(handles.slice(at, at + 512).map((wf) => wf.cancel('done')));
    const cancelled = / wf-\d+ cancelled /g;
    await watch.waitForOutput({ test: (text: string) => (text.match(cancelled) ?? []).length === handles.length } as unknown as RegExp);
    await client.createWorkflow({ id: 'late', userQuery: 'created once the others ended' });
    const output = await watch.waitForOutput(/ late pending |cannot follow workflow late/);
    expect(output).not.toContain('cannot follow workflow late');
    watch.child.kill('SIGINT');
    expect(await watch.exited).toBe(0);
  }, 120_000);

  it('refuses options that do not go with it', () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [...CLI, 'status', ...args, '--token', TOKENS.admin], { encoding: 'utf8' });
    expect(run('--count', '3').stderr).toContain('workflow ids, --interval and --count go with --watch');
    expect(run('--watch', '--json').stderr).toContain('not --json');
    expect(run('--watch', '--interval', '10').stderr).toContain('--interval must be from 100 to 3600000 (ms), got 10');
    expect(run('--watch', '--count', '0').status).not.toBe(0);
  });

  it.skipIf(!hasScript)('on a terminal redraws one screen in place: per workflow a progress bar, its orders by state and its rate', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'on-screen', userQuery: 'drawn on a terminal' });
    await wf.start();
    await wf.updateProgress('work', 50);
    await wf.createWorkOrders([{ taskType: 'work' }, { taskType: 'work' }]);
    const command = [process.execPath, ...CLI, 'status', '--watch', '--count', '2', '--interval', '100', '--url', hub.url, '--token', TOKENS.monitor].map(quoted).join(' ');
    // `script` runs the command in a pseudo-terminal and copies what it draws to its stdout. Not
    // spawnSync: the hub that answers runs in this process.
    const script = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let screen = '';
    script.stdout.on('data', (chunk: Buffer) => (screen += chunk.toString()));
    script.stderr.on('data', (chunk: Buffer) => (screen += chunk.toString()));
    const [code] = await once(script, 'exit');
    expect(code, screen).toBe(0);
    // Two frames, each from the top of the screen; the cursor hidden while drawing and shown again at the end.
    expect(screen.startsWith('\x1b[?25l\x1b[2J')).toBe(true);
    expect(screen.split('\x1b[H').length - 1).toBe(2);
    expect(screen.trimEnd().endsWith('\x1b[?25h')).toBe(true);
    const lastFrame = screen.slice(screen.lastIndexOf('\x1b[H')).replaceAll('\x1b[K', '').replaceAll('\r', '');
    expect(lastFrame).toMatch(/on-screen\s+in_progress\s+\[##########\.{10}\]\s+50%\s+0\.0\/s/);
    expect(lastFrame).toContain('orders: 2 queued (2 no agent can take), 0 running, 0 completed, 0 failed');
  }, 60_000);

  it.skipIf(!hasScript)('following every live workflow, shows the live ones first and keeps only the ten latest to end', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const ids = Array.from({ length: 12 }, (_, i) => `wf-${String(i).padStart(2, '0')}`);
    const flows = await Promise.all(ids.map((id) => client.createWorkflow({ id, userQuery: `workflow ${id}` })));
    const command = [process.execPath, ...CLI, 'status', '--watch', '--interval', '100', '--url', hub.url, '--token', TOKENS.monitor].map(quoted).join(' ');
    // A screen tall enough for every row: what is left out is the watch's choice, not the terminal's.
    const script = spawn('script', ['-qec', `stty rows 80 cols 200; ${command}`, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let screen = '';
    const frames = () => screen.split('\x1b[H').map((frame) => frame.replaceAll('\x1b[K', '').replaceAll('\r', ''));
    const seen = (predicate: (frame: string) => boolean) =>
      new Promise<string>((resolve) => {
        const check = () => {
          const frame = frames().slice(0, -1).find(predicate);
          if (frame !== undefined) {
            script.stdout.off('data', check);
            resolve(frame);
          }
        };
        script.stdout.on('data', (chunk: Buffer) => (screen += chunk.toString()));
        script.stdout.on('data', check);
      });
    const rows = (frame: string) => frame.split('\n').filter((line) => /^(wf-\d\d|fresh) /.test(line)).map((line) => line.split(/\s+/).slice(0, 2).join(' '));
    await seen((frame) => rows(frame).length === 12);
    for (const wf of flows) await wf.cancel('done with it');
    await client.createWorkflow({ id: 'fresh', userQuery: 'created after the others ended' });
    const last = await seen((frame) => rows(frame)[0] === 'fresh pending' && rows(frame).filter((row) => row.endsWith(' cancelled')).length === 10);
    script.kill('SIGINT');
    await once(script, 'exit');
    expect(rows(last)).toEqual(['fresh pending', ...ids.slice(2).reverse().map((id) => `${id} cancelled`)]);
  }, 60_000);
});
