import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';

/** A child process whose stdout lines can be awaited. */
export class LineProcess {
  readonly lines: string[] = [];
  private readonly waiters: Array<{ match: (line: string) => boolean; resolve: (line: string) => void }> = [];

  private constructor(readonly child: ChildProcess) {
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline;
      while ((newline = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        this.lines.push(line);
        for (const waiter of [...this.waiters]) {
          if (!waiter.match(line)) continue;
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  }

  /** Runs a TypeScript file (relative to test/faults/fixtures) with tsx; killed when the test ends. */
  static start(fixture: string, args: string[]): LineProcess {
    const file = fileURLToPath(new URL(`./fixtures/${fixture}`, import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      }
    });
    return new LineProcess(child);
  }

  /** Resolves with the first line (already printed or to come) that matches. */
  next(match: (line: string) => boolean, seen = true): Promise<string> {
    if (seen) {
      const found = this.lines.find(match);
      if (found) return Promise.resolve(found);
    }
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }
}
