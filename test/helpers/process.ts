import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { onTestFinished } from 'vitest';
import { bundledCli } from './cli-bundle.ts';

/**
 * Node arguments that run the CLI from the sources, bundled at the first spawn of a test file, so
 * that files which only import this one pay nothing (bin/switchboard.mjs runs dist/, which may be
 * older than the sources; test/package.test.ts runs the compiled one from a packed tarball).
 */
export const CLI: Iterable<string> = { [Symbol.iterator]: () => [bundledCli()][Symbol.iterator]() };

/** A `switchboard` command running as a child process. */
export interface CliProcess {
  child: ChildProcess;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /** What it printed on stdout so far. */
  stdout(): string;
  /** Resolves with the output once it matches `pattern`; rejects if the process ends first. */
  waitForOutput(pattern: RegExp): Promise<string>;
  /** Resolves with the exit code once the process ends. */
  exited: Promise<number | null>;
}

/** A hub running as a child process through the CLI. */
export interface HubProcess extends CliProcess {
  url: string;
}

/** Runs `switchboard <args>` with `env` added to this process's environment; killed when the test ends. */
export function spawnCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, [...CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  let stdout = '';
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  child.stdout!.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    stdout += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const waitForOutput = (pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      if (pattern.test(text)) return resolve(text);
      const onData = () => {
        if (!pattern.test(text)) return;
        child.stdout!.off('data', onData);
        child.stderr!.off('data', onData);
        resolve(text);
      };
      // Registered after the collectors, so `text` already holds the chunk.
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      exited.then((code) => reject(new Error(`switchboard ${args[0]} exited with ${code} before printing ${pattern}:\n${text}`)));
    });
  return { child, output: () => text, stdout: () => stdout, waitForOutput, exited };
}

/** Runs `switchboard start` with `args` and `env`, resolving once it prints its URL; killed when the test ends. */
export async function startHubProcess(args: string[], env: Record<string, string> = {}): Promise<HubProcess> {
  const hub = spawnCli(['start', ...args], { SWITCHBOARD_LOG_LEVEL: 'warn', ...env });
  const listening = /listening on (http:\/\/\S+)/;
  const url = listening.exec(await hub.waitForOutput(listening))![1]!;
  return { ...hub, url };
}
