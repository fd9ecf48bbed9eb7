import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';

/**
 * Node arguments that run the CLI from the sources (bin/switchboard.mjs runs dist/, which may be
 * older than the sources; test/package.test.ts runs the compiled one from a packed tarball).
 */
export const CLI = ['--import', 'tsx', fileURLToPath(new URL('../../server/cli.ts', import.meta.url))];

/** A hub running as a child process through the CLI. */
export interface HubProcess {
  child: ChildProcess;
  url: string;
  /** Everything the process printed so far. */
  output(): string;
  /** Resolves with the output once it matches `pattern` (the logger and the banner write separately). */
  waitForOutput(pattern: RegExp): Promise<string>;
  /** Resolves with the exit code once the process ends. */
  exited: Promise<number | null>;
}

/** Runs `switchboard start` with `args` and `env`, resolving once it prints its URL; killed when the test ends. */
export async function startHubProcess(args: string[], env: Record<string, string> = {}): Promise<HubProcess> {
  const child = spawn(process.execPath, [...CLI, 'start', ...args], {
    env: { ...process.env, SWITCHBOARD_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const collect = (chunk: Buffer) => (text += chunk.toString());
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const waitForOutput = (pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      if (pattern.test(text)) return resolve(text);
      const onData = () => {
        if (!pattern.test(text)) return;
        child.stdout!.off('data', onData);
        child.stderr!.off('data', onData);
        resolve(text);
      };
      // Registered after `collect`, so `text` already holds the chunk.
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      exited.then((code) => reject(new Error(`hub exited with ${code} before printing ${pattern}:\n${text}`)));
    });
  const listening = /listening on (http:\/\/\S+)/;
  const url = listening.exec(await waitForOutput(listening))![1]!;
  return { child, url, output: () => text, waitForOutput, exited };
}
