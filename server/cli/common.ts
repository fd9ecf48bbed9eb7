import { existsSync, readFileSync } from 'node:fs';
import { lockHolder } from '../store/lock.ts';
import { join } from 'node:path';
import { parseSecretJson } from '../secret-json.ts';
import { parseTokenList, readTokens } from '../transport/auth.ts';
import { HOST_REFUSED } from '../transport/allowed-hosts.ts';
import type { TokenGrant } from '../../shared/schemas/tokens.ts';
import type { ControlClient } from '../../client-sdk/control.ts';
import { hubUrl } from '../../client-sdk/hub-url.ts';
import { unreachable, WHERE_TOKENS_COME_FROM } from '../../client-sdk/connect-error.ts';
import { HubError } from '../../shared/errors.ts';
import { printable } from '../../shared/printable.ts';
import { boundedPool } from '../store/postgres/pg-pool.ts';
import { readClusterTokens } from '../store/postgres/pg-tokens.ts';
import { DEFAULT_PARTITION } from '../store/postgres/schema.ts';

/** An error the CLI reports as one line and a non-zero exit. */
export class CliError extends Error {}

/** Parses a whole number option, or says which flag was wrong. */
export function integer(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  // Digits only: Number() would read "" as 0 and "0x10" as 16.
  if (!/^\d+$/.test(text.trim())) throw new CliError(`${name} must be a whole number, got "${text}"`);
  return Number(text);
}

/**
 * Refuses a flag given an empty value (`--postgres "$UNSET"`), which would otherwise read as not
 * given and quietly fall back to a default (a standalone hub, the generated tokens, ./.switchboard).
 * Whole-number flags are left to `integer`, which says the same; `required` ones have no default.
 */
export function refuseEmptyFlags(values: Record<string, unknown>, numeric: readonly string[] = [], required: readonly string[] = []): void {
  const empty = Object.keys(values).filter((name) => values[name] === '' && !numeric.includes(name));
  if (!empty.length) return;
  // A flag without a default: "leave it out" would only lead to the refusal of its absence.
  const needed = empty.filter((name) => required.includes(name));
  const flags = (names: string[]) => names.map((name) => `--${name}`).join(', ');
  const them = (names: string[]) => (names.length > 1 ? 'them' : 'it');
  const named = empty.length === 1 ? 'it' : flags(needed);
  const advice = needed.length === 0 ? `leave ${them(empty)} out for the default` : `${named} ${needed.length > 1 ? 'have' : 'has'} no default: give ${them(needed)} a value`;
  throw new CliError(`${flags(empty)} given an empty value; ${advice}`);
}

/** An on/off setting from the environment (1, true, yes / 0, false, no, or unset), or says which was wrong. */
export function onOff(name: string, text: string | undefined): boolean | undefined {
  if (text === undefined || text === '') return undefined;
  const value = text.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new CliError(`${name} must be 1 or 0 (true/false, yes/no, on/off), got "${text}"`);
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** A duration such as `30d`, `12h`, `90m`, `45s` or `500ms`, in ms; or says which flag was wrong. */
export function duration(name: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text.trim());
  if (!match) throw new CliError(`${name} must be a duration such as 30d, 12h, 90m or 45s, got "${text}"`);
  const ms = Math.round(Number(match[1]) * UNITS[match[2]!]!);
  // Past this a count of ms is no longer exact, and the hub refuses it in its own terms (olderThanMs).
  if (ms > Number.MAX_SAFE_INTEGER) throw new CliError(`${name} must be at most ${Math.floor(Number.MAX_SAFE_INTEGER / UNITS.d!)}d (about 285,000 years), got "${text}"`);
  return ms;
}

/** The data directory from the flag, the environment (an empty variable counts as unset, as `start` takes it), or the default. */
export function dataDirOf(flag: string | undefined): string {
  return flag ?? (process.env.SWITCHBOARD_DATA_DIR || undefined) ?? './.switchboard';
}

/** Where `switchboard start` notes the URL it listens on, in its data directory, while it runs. */
export const HUB_URL_FILE = 'hub.url';

/**
 * Where a running hub is and which token to use: flags, then SWITCHBOARD_URL / SWITCHBOARD_TOKEN,
 * then what the hub's own settings say (the URL the hub holding the data directory noted, else
 * SWITCHBOARD_PORT on 127.0.0.1, else port 4700; a token found as ownTokens finds the hub's list).
 */
export async function hubAddress(values: { url?: string | undefined; token?: string | undefined; 'data-dir'?: string | undefined }): Promise<{ url: string; token: string }> {
  // An empty variable is an unset one. The port a hub was told is a guess, after the one it took
  // (hub.url), and read only then: exported for `start`, 0 means "any free one", which no client can dial.
  const given = values.url ?? (process.env.SWITCHBOARD_URL || undefined) ?? runningHubUrl(dataDirOf(values['data-dir'])) ?? portUrl();
  let url: string;
  try {
    // The SDK's own check: the same hint for a missing scheme, and a path (which the hub does not serve) refused.
    url = hubUrl(given);
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  const token =
    values.token ?? (process.env.SWITCHBOARD_TOKEN || undefined) ?? localToken(values['data-dir']) ?? (await clusterToken(process.env.SWITCHBOARD_POSTGRES || undefined));
  if (!token) {
    // Where it looked, so that a command run from the wrong folder says so.
    const file = tokensFileOf(values['data-dir']);
    const looked = file === undefined ? 'SWITCHBOARD_TOKENS holds no admin or monitor token' : existsSync(file) ? `${file} holds no admin or monitor token` : `no ${file}`;
    throw new CliError(
      `no token (${looked}): pass --token, set SWITCHBOARD_TOKEN, or give --data-dir the hub's data directory (or SWITCHBOARD_TOKENS_FILE its token file, SWITCHBOARD_POSTGRES a cluster's database)`,
    );
  }
  // The CLI speaks HTTP to the hub; a socket.io client's ws:// names the same server.
  return { url: url.replace(/^ws(s?):/, 'http$1:'), token };
}

/** The hub on this machine at SWITCHBOARD_PORT, else at the default port. */
function portUrl(): string {
  const port = integer('SWITCHBOARD_PORT', process.env.SWITCHBOARD_PORT || undefined);
  if (port !== undefined && port > 65_535) throw new CliError(`SWITCHBOARD_PORT must be a port number (1-65535), got ${port}`);
  return `http://127.0.0.1:${port || 4700}`;
}

/** How long the CLI waits for a cluster's PostgreSQL to answer a connect or a query. */
export const CLI_TIMEOUT_MS = 30_000;

/** An admin (else monitor) token of the cluster whose PostgreSQL `url` names, as its nodes take them; none without a URL. */
async function clusterToken(url: string | undefined): Promise<string | undefined> {
  if (!url) return undefined;
  const pool = boundedPool(url, 1, CLI_TIMEOUT_MS);
  try {
    const grants = (await readClusterTokens(pool, DEFAULT_PARTITION)) ?? [];
    return (grants.find((g) => g.role === 'admin') ?? grants.find((g) => g.role === 'monitor'))?.token;
  } catch (error) {
    throw new CliError(`the cluster's tokens in PostgreSQL (SWITCHBOARD_POSTGRES) could not be read: ${(error as Error).message}`);
  } finally {
    await pool.end();
  }
}

/** The URL the hub holding `dataDir` noted (it may listen on a port it was given as 0), while it runs. */
function runningHubUrl(dataDir: string): string | undefined {
  const file = join(dataDir, HUB_URL_FILE);
  if (lockHolder(dataDir) === undefined || !existsSync(file)) return undefined;
  return readFileSync(file, 'utf8').trim() || undefined;
}

/**
 * An admin (else monitor) token of the hub's list, found as `switchboard start` finds it: in
 * SWITCHBOARD_TOKENS, the file SWITCHBOARD_TOKENS_FILE names, or the data directory's tokens.json;
 * but a --data-dir flag whose tokens.json exists names that list (another hub's may be in the environment).
 */
function localToken(dataDirFlag: string | undefined): string | undefined {
  const grants = ownTokens(dataDirFlag);
  return (grants?.find((g) => g.role === 'admin') ?? grants?.find((g) => g.role === 'monitor'))?.token;
}

function ownTokens(dataDirFlag: string | undefined): TokenGrant[] | undefined {
  const file = tokensFileOf(dataDirFlag);
  if (file) return existsSync(file) ? readTokens(file) : undefined;
  try {
    return parseTokenList(parseSecretJson(process.env.SWITCHBOARD_TOKENS!), 'SWITCHBOARD_TOKENS');
  } catch (error) {
    throw new CliError(`SWITCHBOARD_TOKENS: ${(error as Error).message}`);
  }
}

/**
 * The token file of the hub the CLI talks to, or undefined when the list is SWITCHBOARD_TOKENS
 * itself: a --data-dir flag's tokens.json when it exists (the flag names the hub), else what
 * `switchboard start` takes with this environment (SWITCHBOARD_TOKENS, SWITCHBOARD_TOKENS_FILE,
 * else the data directory's tokens.json, as a hub started with --data-dir and either variable uses).
 */
export function tokensFileOf(dataDirFlag: string | undefined): string | undefined {
  const directoryFile = join(dataDirOf(dataDirFlag), 'tokens.json');
  if (dataDirFlag !== undefined && existsSync(directoryFile)) return directoryFile;
  if (process.env.SWITCHBOARD_TOKENS) return undefined;
  return process.env.SWITCHBOARD_TOKENS_FILE || directoryFile;
}

/** GETs a path of the hub's HTTP API with the token; the hub's error message on failure. */
export async function getFromHub(address: { url: string; token: string }, path: string): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(new URL(path, address.url), { headers: { authorization: `Bearer ${address.token}` } });
  } catch (error) {
    const cause = (error as Error).cause as NodeJS.ErrnoException | undefined;
    // fetch refuses the ports the Fetch standard blocks (6000, 6667, 10080, ...), which a hub may listen on.
    if (cause?.message === 'bad port') throw new CliError(`cannot reach the hub at ${address.url}: Node's fetch, which this command uses, refuses its port (the Fetch standard blocks it); run the hub on another port`);
    // In the words of the SDK's clients (status --watch, prune, retry): the cause and what to do about it.
    throw new CliError(unreachable(address.url, { ...(typeof cause?.code === 'string' ? { code: cause.code } : {}), message: cause?.message ?? (error as Error).message }));
  }
  if (!response.ok) {
    const body = (await response.json().catch(() => undefined)) as { error?: { code: string; message: string } } | undefined;
    // The name in the URL, not the token: no token would help.
    if (body?.error && String(body.error.message).startsWith(HOST_REFUSED)) throw new CliError(`the hub at ${address.url} refused the request: ${body.error.message}`);
    if (body?.error?.code === 'UNAUTHENTICATED' || body?.error?.code === 'FORBIDDEN') {
      throw new CliError(`the hub at ${address.url} refused the token: ${body.error.message}. ${WHERE_TOKENS_COME_FROM}`);
    }
    if (body?.error) throw new CliError(`${path}: ${body.error.code}: ${body.error.message}`);
    // A hub answers every path it does not know with its own error body: a bare 404 is another server.
    if (response.status === 404) throw new CliError(`${address.url} is not a Switchboard hub (${path} answered HTTP 404 without the hub's error); check the URL`);
    throw new CliError(`${path}: HTTP ${response.status}`);
  }
  return response;
}

/**
 * Every item of a paged list of the hub's HTTP API (`path` without limit and cursor), page by page;
 * `onPage` is told how many were read before each page.
 */
export async function allPages<T>(address: { url: string; token: string }, path: string, onPage?: (read: number) => void): Promise<T[]> {
  const items: T[] = [];
  const joiner = path.includes('?') ? '&' : '?';
  let cursor: string | null = null;
  do {
    onPage?.(items.length);
    const page = (await (await getFromHub(address, `${path}${joiner}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)).json()) as {
      items: T[];
      nextCursor: string | null;
    };
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}

/** Prints a progress line on a terminal (overwritten in place), nothing when piped. */
export function progress(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${text}`);
}

/** Ends a progress line. */
export function progressDone(): void {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
}

/** The local time of day of `ms` (hh:mm:ss), as every command shows a time: `status` and `status --watch` alike. */
export const clock = (ms: number): string => new Date(ms).toTimeString().slice(0, 8);

/** `clock(ms)`, after its local date (yyyy-mm-dd) when that is not the day of `now`: a time of another day alone reads as today's. */
export function dayAndClock(ms: number, now = Date.now()): string {
  const at = new Date(ms);
  if (at.toDateString() === new Date(now).toDateString()) return clock(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())} ${clock(ms)}`;
}

/** `n thing` or `n things`. */
export const counted = (n: number, thing: string): string => `${n} ${thing}${n === 1 ? '' : 's'}`;

/** Lays rows out in aligned columns, every cell printable. */
export function table(header: string[], cells: string[][]): string {
  const rows = cells.map((row) => row.map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

/** A control client of the hub at `address` (see hubAddress); the SDK is loaded only by the commands that talk to a hub. */
export async function controlClientOf(address: { url: string; token: string }): Promise<ControlClient> {
  const { connectControl } = await import('../../client-sdk/index.ts');
  try {
    return await connectControl({ url: address.url, token: address.token });
  } catch (error) {
    throw connectionRefusal(error);
  }
}

/** One change a CLI command makes on a running hub, with what its lines call it. */
export interface HubChange<T> {
  /** The change as a noun and as a verb's object: "the pause of wf-1", "pause wf-1". */
  noun: string;
  verb: string;
  /** Reads what it needs, sends the change and says what happened. */
  make: (control: ControlClient) => Promise<T>;
  /** The outcome in a line or a few. */
  describe: (outcome: T) => string;
}

/**
 * Makes one change on a running hub as a control client, and prints what happened (as JSON with
 * `json`); a refusal, or an answer lost, is a one-line CliError saying so.
 */
export async function changeOnHub<T>(address: { url: string; token: string }, json: boolean | undefined, change: HubChange<T>): Promise<void> {
  const control = await controlClientOf(address);
  try {
    let outcome: T;
    try {
      outcome = await change.make(control);
    } catch (error) {
      // Without an answer it may have been applied; sending it again does no harm (PROTOCOL.md).
      if (error instanceof HubError && error.code === 'DISCONNECTED') {
        throw new CliError(`no answer to ${change.noun}, which may have been applied: ${error.message}; run it again to see`);
      }
      if (error instanceof HubError) throw new CliError(`the hub refused to ${change.verb}: ${error.code}: ${error.message}`);
      throw error;
    }
    process.stdout.write((json ? JSON.stringify(outcome, null, 2) : change.describe(outcome)) + '\n');
  } finally {
    await control.close();
  }
}

/**
 * An SDK connection's failure as the CLI says it: the SDK's message names the URL and what went
 * wrong (unreachable, or a refused token), but a token of the wrong role in the SDK's function names.
 */
export function connectionRefusal(error: unknown): CliError {
  const message = error instanceof Error ? error.message : String(error);
  return new CliError(message.replace(/\(connect(Control|Monitor) takes (an? [a-z ]+ token)\)/, '(this command takes $2)'));
}

/** The flags of every command that talks to a running hub (status, report, prune, retry): where it is, how to get in, help. */
export const HUB_FLAGS = {
  url: { type: 'string' },
  token: { type: 'string' },
  'data-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
