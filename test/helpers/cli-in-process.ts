import { vi } from 'vitest';
import { TOKENS } from './hub.ts';

/**
 * Runs a CLI command in this process (its hub runs here too) with ARGS against `url` and the
 * admin token: what it printed, and the message of the error the CLI would print, if it threw.
 */
export async function runCli(command: (args: string[]) => Promise<void>, url: string, ...args: string[]): Promise<{ stdout: string; error?: string }> {
  let stdout = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  try {
    await command([...args, '--url', url, '--token', TOKENS.admin]);
    return { stdout };
  } catch (error) {
    return { stdout, error: (error as Error).message };
  } finally {
    spy.mockRestore();
  }
}
