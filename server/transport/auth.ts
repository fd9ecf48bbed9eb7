import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { HubError } from '../../shared/errors.ts';
import { temporaryPath } from '../store/synced-write.ts';
import { TokenList, TokenValue, type Role, type TokenGrant } from '../../shared/schemas/tokens.ts';
import type { Actor } from '../domain/machinery/actor.ts';
import { parseSecretJson } from '../secret-json.ts';
import type { SendingPage } from './client-address.ts';
import type { LoginThrottle } from './login-throttle.ts';
import { makeDirectory } from '../make-directory.ts';
import { issuesText } from '../zod-issues.ts';

const hash = (token: string) => createHash('sha256').update(token).digest('base64');

/** The known tokens, looked up by hash so a lookup reveals nothing about near misses. */
export class TokenRegistry {
  private readonly grants = new Map<string, TokenGrant>();

  /** `throttle`: limits the unknown tokens each client address may present. */
  constructor(
    grants: readonly TokenGrant[],
    private readonly throttle?: LoginThrottle,
  ) {
    this.replace(grants);
  }

  /** Puts a new token list in force (a reload); connections keep the grant they were admitted with. */
  replace(grants: readonly TokenGrant[]): void {
    this.grants.clear();
    for (const grant of grants) this.grants.set(hash(grant.token), grant);
    this.throttle?.forgetRevoked((key) => this.grants.has(key));
  }

  /** Whether `token` is in force, with whatever grant. */
  has(token: string): boolean {
    return this.grants.has(hash(token));
  }

  /** Whether this grant is still in force with the same role and scope. */
  holds(grant: TokenGrant): boolean {
    return JSON.stringify(this.grants.get(hash(grant.token))) === JSON.stringify(grant);
  }

  /**
   * The grant of `token`, presented by a client at `address` (by a browser's `page`: counted
   * apart): UNAUTHENTICATED when there is none, RATE_LIMITED while that address has presented
   * too many unknown tokens.
   */
  authenticate(token: unknown, address: string, page?: SendingPage): TokenGrant {
    const key = typeof token === 'string' ? hash(token) : undefined;
    const grant = key === undefined ? undefined : this.grants.get(key);
    // Refused alike whatever the token while the address is throttled: looked up only so that a token in force is not counted.
    this.throttle?.check(address, key, page, grant !== undefined);
    if (!grant) {
      if (!token) throw new HubError('UNAUTHENTICATED', 'a token is required');
      // Something no token can be guesses nothing either: it is told why, and not counted against the address.
      const unlike = unlikeAnyToken(token);
      if (unlike) throw new HubError('UNAUTHENTICATED', `unknown token: ${unlike}`);
      this.throttle?.failed(address, page);
      throw new HubError('UNAUTHENTICATED', 'unknown token');
    }
    this.throttle?.passed(address, key!, page);
    return grant;
  }
}

/** Why `token` cannot be any hub's token (never quoting it), or undefined when it could be one. */
function unlikeAnyToken(token: unknown): string | undefined {
  if (typeof token !== 'string') return `a token is a string, not ${token === null ? 'null' : Array.isArray(token) ? 'an array' : `a ${typeof token}`}`;
  if (token.trim() !== token) return 'it has white space at its start or end, which no token has (a line break read with it from a file?)';
  return TokenValue.safeParse(token).success ? undefined : 'a token is 8 to 200 printable ASCII characters without spaces';
}

/** The grant if it has one of `roles`, else FORBIDDEN. */
export function requireRole(grant: TokenGrant, roles: readonly Role[]): TokenGrant {
  // "an admin", "an agent", "a monitor".
  const article = /^[aeiou]/.test(grant.role) ? 'an' : 'a';
  if (!roles.includes(grant.role)) throw new HubError('FORBIDDEN', `${article} ${grant.role} token cannot use this; it needs ${roles.join(' or ')}`);
  return grant;
}

/**
 * The actor a grant acts as, for provenance and permission checks. An agent connection acts for
 * an agent only once it has registered (agent.register sets `agentId`), bound token or not.
 */
export function actorOf(grant: TokenGrant): Actor {
  return { role: grant.role, name: grant.name ?? grant.role };
}

/** Whether a grant may see a workflow (monitor tokens can be scoped to some workflows). */
export function canSee(grant: TokenGrant, workflowId: string): boolean {
  return !grant.workflows || grant.workflows.includes(workflowId);
}

export const TOKENS_FILE = 'tokens.json';

/** The mode of the directories the hub or the CLI makes for its data or tokens: its owner's alone (existing ones are left as they are). */
export const PRIVATE_DIR_MODE = 0o700;
/** A tokens file is created readable by its owner alone. */
export const TOKEN_FILE_MODE = 0o600;

/** A fresh random token whose prefix says its role. */
export function newToken(role: Role): string {
  return `sb_${role}_${randomBytes(18).toString('base64url')}`;
}

/** `json` as a token list, or VALIDATION naming `where` it came from and what is wrong. */
export function parseTokenList(json: unknown, where: string): TokenGrant[] {
  const parsed = TokenList.safeParse(json);
  if (!parsed.success) throw new HubError('VALIDATION', `${where} is not a valid token list: ${issuesText(parsed.error)}`);
  return parsed.data;
}

/** Reads a token list from a JSON file, with a clear error naming the file when it is not one. */
export function readTokens(file: string): TokenGrant[] {
  let json: unknown;
  try {
    json = parseSecretJson(readFileSync(file, 'utf8'));
  } catch (error) {
    // A relative path is read from the working directory, not from a config file's folder that named it: say which.
    const named = isAbsolute(file) ? file : `${file} (${resolve(file)})`;
    const why = error instanceof SyntaxError ? `token file ${named} is not valid JSON` : `cannot read token file ${named}`;
    throw new HubError('VALIDATION', `${why}: ${(error as Error).message}`);
  }
  return parseTokenList(json, file);
}

/**
 * The permissions of a token file that users other than its owner may read or change (e.g. "644"),
 * else undefined. Such a file is kept as it is (its owner may mean it) but warned of, as ssh does.
 */
export function looseTokenFileMode(file: string): string | undefined {
  if (process.platform === 'win32') return undefined;
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    return undefined;
  }
  return mode & 0o077 ? (mode & 0o777).toString(8) : undefined;
}

/** The warning for a token file with `mode`, for the log and the CLI. */
export function looseTokenFileWarning(file: string, mode: string): string {
  return `token file ${file} can be read by other users (mode ${mode}); run chmod 600 on it`;
}

/** The tokens a hub generates when it has none: one admin, one agent and one monitor token. */
export function defaultGrants(): TokenGrant[] {
  return (['admin', 'agent', 'monitor'] as const).map((role) => ({ token: newToken(role), role, name: `default-${role}` }));
}

/**
 * The tokens of a data directory: read from `tokens.json`, or generated on first start
 * (one admin, one agent, one monitor token) and written there, readable by the owner only.
 */
export function loadOrCreateTokens(dataDir: string, save = true): { grants: TokenGrant[]; created: boolean } {
  const file = join(dataDir, TOKENS_FILE);
  if (existsSync(file)) return { grants: readTokens(file), created: false };
  const grants = defaultGrants();
  if (save) saveTokens(dataDir, grants);
  return { grants, created: true };
}

/** The tokens of a data directory's `tokens.json` for a reload, which never generates: a missing file is VALIDATION. */
export function readDataDirTokens(dataDir: string): TokenGrant[] {
  const file = join(dataDir, TOKENS_FILE);
  if (!existsSync(file)) throw new HubError('VALIDATION', `${file} is missing; the tokens in force are kept (only a first start generates tokens)`);
  return readTokens(file);
}

/** Writes generated tokens to `<dataDir>/tokens.json` (readable by the owner alone). */
export function saveTokens(dataDir: string, grants: TokenGrant[]): void {
  makeDirectory(dataDir, PRIVATE_DIR_MODE);
  // Written aside and renamed into place: a crash in the middle leaves no half file for the next start to refuse.
  const temporary = temporaryPath(dataDir, TOKENS_FILE);
  rmSync(temporary, { force: true });
  writeFileSync(temporary, JSON.stringify(grants, null, 2) + '\n', { mode: TOKEN_FILE_MODE, flush: true });
  renameSync(temporary, join(dataDir, TOKENS_FILE));
}
