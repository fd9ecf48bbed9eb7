import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Role, TokenGrant } from '../../shared/schemas/tokens.ts';
import { looseTokenFileMode, looseTokenFileWarning, newToken, parseTokenList, readTokens, TOKEN_FILE_MODE, TOKENS_FILE } from '../transport/auth.ts';
import { realLocation } from '../real-location.ts';
import { issuesText } from '../zod-issues.ts';
import { replaceDurably } from '../store/synced-write.ts';
import { boundedPool } from '../store/postgres/pg-pool.ts';
import { changeClusterTokens, readClusterTokens } from '../store/postgres/pg-tokens.ts';
import { DEFAULT_PARTITION, ensureSchema } from '../store/postgres/schema.ts';
import { CLI_TIMEOUT_MS, CliError, dataDirOf, refuseEmptyFlags, table } from './common.ts';
import { lockFile } from './file-lock.ts';

export const TOKENS_HELP = `switchboard tokens — list, create or revoke access tokens

Usage:
  switchboard tokens [list] [--data-dir DIR | --file FILE | --postgres URL]
  switchboard tokens create --role admin|agent|monitor [--name NAME] [--agent-id ID] [--workflows a,b]
                            [--data-dir DIR | --file FILE | --postgres URL]
  switchboard tokens revoke TOKEN [--data-dir DIR | --file FILE | --postgres URL]

  --role R          admin (/control, and monitoring), agent (/agent) or monitor (/monitor, read only)
  --name NAME       a name for the token, shown in lists and the hub's log (never the token)
  --agent-id ID     an agent token that may register as this agent only (without it: any agent)
  --workflows a,b   a monitor token that sees only these workflows
  --data-dir DIR    the hub's data directory, whose tokens.json is changed (default ./.switchboard)
                                                                     [SWITCHBOARD_DATA_DIR]
  --file FILE       a token file of the hub's own (start --tokens FILE); it must exist
                    [SWITCHBOARD_TOKENS_FILE, unless --data-dir names a directory that has its own]
  --postgres URL    a cluster's tokens, in its PostgreSQL               [SWITCHBOARD_POSTGRES]

A running hub started with 'switchboard start' applies a change at 'switchboard reload' (SIGHUP)
or a restart; tokens removed from the file stop working then. The nodes of a cluster apply a
change in its PostgreSQL at once, and close the connections made with a revoked token. The last
admin token cannot be revoked.
`;

/** Where the tokens are kept, and how to change them. */
interface TokenPlace {
  /** Said in messages, e.g. "/data/tokens.json". */
  name: string;
  /** Said after a change: when running hubs apply it. */
  takesEffect: string;
  /** Whether a hub's first start fills it (admin, agent and monitor tokens) when it holds none. */
  filledAtFirstStart: boolean;
  read(): Promise<TokenGrant[]>;
  /** Replaces the tokens with `change(tokens)`; nothing changes when `change` throws. */
  change(change: (grants: TokenGrant[]) => TokenGrant[]): Promise<void>;
  /** What to warn of once done (a file others can read), if anything. */
  warning(): string | undefined;
  close(): Promise<void>;
}

function filePlace(file: string, filledAtFirstStart: boolean): TokenPlace {
  const read = async () => (existsSync(file) ? readTokens(file) : []);
  return {
    name: file,
    takesEffect: 'a running hub applies it at `switchboard reload` (SIGHUP) or a restart',
    filledAtFirstStart,
    read,
    // Only a list that exists is changed (run() refuses the rest), so its folder is there.
    async change(change) {
      const unlock = await lockFile(file);
      try {
        // The hub's own rule, checked before the file changes: a list it would refuse is never written.
        const changed = parseTokenList(change(await read()), 'the token list this change leaves');
        // Replaced whole: a crash or a full disk in the middle of a write in place would leave no tokens at all.
        const target = await realLocation(resolve(file));
        // The file keeps the mode it had (looser ones are warned of below); a new one is the owner's alone.
        const mode = existsSync(target) ? statSync(target).mode & 0o777 : TOKEN_FILE_MODE;
        await replaceDurably(dirname(target), basename(target), (handle) => handle.writeFile(JSON.stringify(changed, null, 2) + '\n'), mode);
      } finally {
        unlock();
      }
    },
    warning() {
      const mode = looseTokenFileMode(file);
      return mode && looseTokenFileWarning(file, mode);
    },
    close: async () => undefined,
  };
}

function postgresPlace(url: string): TokenPlace {
  // A PostgreSQL that does not answer fails the command rather than holding it for good.
  const pool = boundedPool(url, 1, CLI_TIMEOUT_MS);
  let schema: Promise<void> | undefined;
  // The cluster's tables, created as a node would, so that the CLI may come first.
  const ready = () =>
    (schema ??= ensureSchema(pool).catch((error: Error) => {
      throw new CliError(`PostgreSQL: ${error.message}`);
    }));
  return {
    name: "the cluster's PostgreSQL",
    takesEffect: 'every node of the cluster applies the change now',
    filledAtFirstStart: true,
    read: async () => (await ready(), (await readClusterTokens(pool, DEFAULT_PARTITION)) ?? []),
    change: async (change) => void (await ready(), await changeClusterTokens(pool, DEFAULT_PARTITION, change)),
    warning: () => undefined,
    close: () => pool.end(),
  };
}

/** `grants` without `token`; refuses an unknown token, and the last admin token (no one could administer the hub). */
function revoked(grants: TokenGrant[], token: string, place: string): TokenGrant[] {
  const grant = grants.find((g) => g.token === token);
  if (!grant) throw new CliError(`no such token in ${place} (switchboard tokens list shows them)`);
  const kept = grants.filter((g) => g.token !== token);
  if (grant.role === 'admin' && !kept.some((g) => g.role === 'admin')) {
    throw new CliError(`that is the last admin token in ${place}; create another admin token before revoking it`);
  }
  return kept;
}

/** `switchboard tokens`: lists the tokens, adds a new one, or revokes one, in a token file or a cluster's PostgreSQL. */
export async function tokens(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'data-dir': { type: 'string' },
      file: { type: 'string' },
      postgres: { type: 'string' },
      role: { type: 'string' },
      name: { type: 'string' },
      'agent-id': { type: 'string' },
      workflows: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(TOKENS_HELP);
  refuseEmptyFlags(values, [], ['role']);
  if (values.postgres && (values.file || values['data-dir'])) throw new CliError('--postgres and --file or --data-dir name different tokens; give one');
  if (values.file !== undefined && values['data-dir'] !== undefined) throw new CliError('give --data-dir or --file, not both');
  const postgres = values.postgres ?? (values.file || values['data-dir'] ? undefined : process.env.SWITCHBOARD_POSTGRES);
  // The file the hub takes with this environment, unless a flag names one (--data-dir: its tokens.json, once it exists).
  const directoryFile = join(dataDirOf(values['data-dir']), TOKENS_FILE);
  const environmentFile = values['data-dir'] !== undefined && existsSync(directoryFile) ? undefined : process.env.SWITCHBOARD_TOKENS_FILE || undefined;
  const file = values.file ?? environmentFile;
  const place = postgres ? postgresPlace(postgres) : file ? filePlace(file, false) : filePlace(directoryFile, true);
  try {
    await run(place, positionals, values);
    const warning = place.warning();
    if (warning) process.stderr.write(`warning: ${warning}\n`);
  } finally {
    await place.close();
  }
}

/** The options only `create` reads. */
const CREATE_ONLY = ['role', 'name', 'agent-id', 'workflows'] as const;

async function run(place: TokenPlace, positionals: string[], values: { role?: string | undefined; name?: string | undefined; 'agent-id'?: string | undefined; workflows?: string | undefined }): Promise<void> {
  const action = positionals[0] ?? 'list';
  if (!['list', 'create', 'revoke'].includes(action)) throw new CliError(`unknown tokens action "${action}"; use list, create or revoke`);
  // Refused rather than ignored: `revoke A B` would revoke A alone, `list --role agent` would list every role.
  // Counted, not quoted: an argument here may well be a token, and stderr may be a log.
  const extra = positionals.length - 1 - (action === 'revoke' ? 1 : 0);
  if (action === 'revoke' && extra > 0) throw new CliError(`switchboard tokens revoke takes one token, got ${extra + 1}; revoke them one at a time`);
  if (extra > 0) throw new CliError(`switchboard tokens ${action} takes no other arguments, got ${extra}`);
  const misplaced = action === 'create' ? [] : CREATE_ONLY.filter((option) => values[option] !== undefined);
  if (misplaced.length) throw new CliError(`${misplaced.map((o) => `--${o}`).join(', ')} ${misplaced.length > 1 ? 'go' : 'goes'} with switchboard tokens create, not ${action}`);
  // A --file that is not there is most likely a mistyped path, not a list to start: created into it,
  // the one new token would be all a hub given that file has (as before a data directory's first start).
  if (!place.filledAtFirstStart && (await place.read()).length === 0) {
    throw new CliError(`no token file ${place.name}: check the path (--file names an existing token list; a hub writes its first one into its data directory at its first start)`);
  }
  if (action === 'list') {
    const existing = await place.read();
    if (!existing.length) throw new CliError(`no tokens in ${place.name} (a hub generates them on its first start)`);
    const rows = existing.map((t) => [t.role, t.token, t.name ?? '', t.agentId ?? (t.workflows ? `workflows: ${t.workflows.join(',')}` : '')]);
    return void process.stdout.write(table(['ROLE', 'TOKEN', 'NAME', 'SCOPE'], rows) + '\n');
  }
  if (action === 'revoke') {
    const token = positionals[1];
    if (!token) throw new CliError('name the token to revoke: switchboard tokens revoke TOKEN');
    let gone: TokenGrant | undefined;
    await place.change((grants) => {
      gone = grants.find((g) => g.token === token);
      return revoked(grants, token, place.name);
    });
    return void process.stderr.write(`revoked the ${gone?.role} token${gone?.name ? ` ${gone.name}` : ''} from ${place.name}; ${place.takesEffect}\n`);
  }
  const role = Role.safeParse(values.role);
  if (!role.success) throw new CliError('--role must be admin, agent or monitor');
  // Made now, the one token would be all there is: the hub's first start generates tokens only where there are none, so it would have no admin token.
  if (place.filledAtFirstStart && (await place.read()).length === 0) {
    throw new CliError(`${place.name} holds no tokens yet: a hub makes its admin, agent and monitor tokens at its first start; start it once, then create more`);
  }
  const scope = values.workflows?.split(',').map((w) => w.trim()).filter(Boolean);
  // An empty scope must not quietly become none at all: that token would see every workflow.
  if (scope?.length === 0) throw new CliError('--workflows names no workflow; leave it out for a token that sees every workflow');
  const candidate = {
    token: newToken(role.data),
    role: role.data,
    ...(values.name ? { name: values.name } : {}),
    ...(values['agent-id'] ? { agentId: values['agent-id'] } : {}),
    ...(scope ? { workflows: scope } : {}),
  };
  const grant = TokenGrant.safeParse(candidate);
  if (!grant.success) throw new CliError(`invalid token: ${issuesText(grant.error)}`);
  await place.change((grants) => [...grants, grant.data]);
  process.stdout.write(`${grant.data.token}\n`);
  process.stderr.write(`added ${/^[aeiou]/.test(role.data) ? 'an' : 'a'} ${role.data} token to ${place.name}; ${place.takesEffect}\n`);
}
