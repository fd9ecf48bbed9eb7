import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import {
  connectAgent,
  connectControl,
  connectMonitor,
  type AgentClient,
  type AgentOptions,
  type ControlClient,
  type MonitorClient,
} from '../../client-sdk/index.ts';
import type { TokenGrant } from '../../shared/schemas/tokens.ts';
import { LOCK_FILE } from '../../server/store/lock.ts';
import { createHub, type HubOptionsInput, type HubParts, type RunningHub } from '../../server/index.ts';

/** The tokens every test hub accepts. */
export const TOKENS = {
  admin: 'test-admin-token',
  agent: 'test-agent-token',
  monitor: 'test-monitor-token',
} as const;

export const GRANTS: TokenGrant[] = [
  { token: TOKENS.admin, role: 'admin', name: 'test-admin' },
  { token: TOKENS.agent, role: 'agent', name: 'test-agent' },
  { token: TOKENS.monitor, role: 'monitor', name: 'test-monitor' },
];

/** A fresh temporary data directory, removed when the test ends. */
export function tempDir(prefix = 'switchboard-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A copy of the data directory `dir` as a crash would leave it now (without the running hub's lock), removed when the test ends. */
export function crashCopy(dir: string): string {
  const copy = tempDir();
  for (const name of readdirSync(dir)) if (name !== LOCK_FILE) cpSync(join(dir, name), join(copy, name), { recursive: true });
  return copy;
}

/** Starts a hub on port 0 with the test tokens; it is closed when the test ends. */
export async function startHub(options: HubOptionsInput = {}, parts: HubParts = {}): Promise<RunningHub> {
  const hub = await createHub({ port: 0, tokens: GRANTS, logLevel: 'silent', dataDir: options.dataDir ?? tempDir(), ...options }, parts);
  onTestFinished(() => hub.close());
  return hub;
}

/** Connects a control client with the admin token; it is closed when the test ends. */
export async function control(hub: { url: string }): Promise<ControlClient> {
  const client = await connectControl({ url: hub.url, token: TOKENS.admin });
  onTestFinished(() => client.close());
  return client;
}

/** Connects and registers an agent with the agent token; it is closed when the test ends. */
export async function agent(hub: { url: string }, options: Omit<AgentOptions, 'url' | 'token'>): Promise<AgentClient> {
  const client = await connectAgent({ url: hub.url, token: TOKENS.agent, ...options });
  onTestFinished(() => client.close());
  return client;
}

/** Connects a monitor (monitor token unless another is given); it is closed when the test ends. */
export async function monitor(hub: { url: string }, token: string = TOKENS.monitor): Promise<MonitorClient> {
  const client = await connectMonitor({ url: hub.url, token });
  onTestFinished(() => client.close());
  return client;
}
