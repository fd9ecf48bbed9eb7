import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHub } from 'switchboard/server';

/** The hub an example talks to, the tokens it may use, and a folder for the files it writes. */
export interface ExampleHub {
  url: string;
  tokens: { admin: string; agent: string; monitor: string };
  /** A fresh folder the example may write data files to. */
  dataRoot: string;
  /** Whether the hub may read files in `dataRoot` to validate them (false for a given hub without SWITCHBOARD_DATA_ROOT). */
  validatesData: boolean;
  /** Stops the hub (if the example started it) and removes the temporary folders. */
  close(): Promise<void>;
}

type Role = keyof ExampleHub['tokens'];

/**
 * Tokens of a given hub: SWITCHBOARD_<ROLE>_TOKEN, else the `tokens.json` named by SWITCHBOARD_TOKENS_FILE,
 * else the data directory's (SWITCHBOARD_DATA_DIR, default ./.switchboard), as the hub and the CLI find them.
 */
function givenTokens(): ExampleHub['tokens'] {
  const file = process.env.SWITCHBOARD_TOKENS_FILE || join(process.env.SWITCHBOARD_DATA_DIR || '.switchboard', 'tokens.json');
  const grants: Array<{ role: string; token: string }> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : [];
  const token = (role: Role) => {
    const value = process.env[`SWITCHBOARD_${role.toUpperCase()}_TOKEN`] ?? grants.find((g) => g.role === role)?.token;
    if (!value) throw new Error(`SWITCHBOARD_URL is set: give SWITCHBOARD_${role.toUpperCase()}_TOKEN, SWITCHBOARD_TOKENS_FILE (a tokens.json) or SWITCHBOARD_DATA_DIR (the hub's data directory): ${existsSync(file) ? `${file} has no ${role} token` : `there is no ${file}`}`);
    return value;
  };
  return { admin: token('admin'), agent: token('agent'), monitor: token('monitor') };
}

/**
 * The hub named by SWITCHBOARD_URL (tokens from the environment), or a fresh one on port 0 with a
 * temporary data directory and generated tokens, so every example runs on its own.
 * @example const hub = await useHub(); const control = await connectControl({ url: hub.url, token: hub.tokens.admin });
 */
export async function useHub(): Promise<ExampleHub> {
  const given = process.env.SWITCHBOARD_URL;
  const folders: string[] = [];
  const temporary = (prefix: string) => {
    const dir = mkdtempSync(prefix);
    folders.push(dir);
    return dir;
  };
  const removeFolders = () => folders.forEach((dir) => rmSync(dir, { recursive: true, force: true }));
  if (given) {
    const sharedRoot = process.env.SWITCHBOARD_DATA_ROOT;
    // Said plainly: mkdtemp would fail with a bare ENOENT naming a folder the user never chose.
    if (sharedRoot !== undefined && !existsSync(sharedRoot)) {
      throw new Error(`SWITCHBOARD_DATA_ROOT is ${sharedRoot}, which does not exist: create it, or name one of the hub's dataRoots that does`);
    }
    return {
      url: given,
      tokens: givenTokens(),
      dataRoot: sharedRoot ? temporary(join(sharedRoot, 'example-')) : temporary(join(tmpdir(), 'switchboard-example-data-')),
      validatesData: sharedRoot !== undefined,
      close: async () => removeFolders(),
    };
  }
  const dataRoot = temporary(join(tmpdir(), 'switchboard-example-data-'));
  const tokens = { admin: secret('admin'), agent: secret('agent'), monitor: secret('monitor') };
  const hub = await createHub({
    port: 0,
    dataDir: temporary(join(tmpdir(), 'switchboard-example-hub-')),
    dataRoots: [dataRoot],
    logLevel: 'warn',
    tokens: (Object.keys(tokens) as Role[]).map((role) => ({ token: tokens[role], role, name: `example-${role}` })),
  });
  return {
    url: hub.url,
    tokens,
    dataRoot,
    validatesData: true,
    close: async () => {
      await hub.close();
      removeFolders();
    },
  };
}

function secret(role: Role): string {
  return `sb_${role}_${randomBytes(18).toString('base64url')}`;
}
