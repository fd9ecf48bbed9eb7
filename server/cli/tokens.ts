import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Role, TokenGrant } from '../../shared/schemas/tokens.ts';
import { newToken, readTokens, TOKENS_FILE } from '../transport/auth.ts';
import { CliError, dataDirOf, table } from './common.ts';

export const TOKENS_HELP = `switchboard tokens — list or create access tokens

Usage:
  switchboard tokens [list] [--data-dir DIR | --file FILE]
  switchboard tokens create --role admin|agent|monitor [--name NAME] [--agent-id ID] [--workflows a,b] [--data-dir DIR | --file FILE]

The tokens live in the data directory's tokens.json (or --file). A running hub started with
'switchboard start' reloads them on SIGHUP; tokens removed from the file stop working then.
`;

/** `switchboard tokens`: lists the token file, or adds a new token to it. */
export async function tokens(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'data-dir': { type: 'string' },
      file: { type: 'string' },
      role: { type: 'string' },
      name: { type: 'string' },
      'agent-id': { type: 'string' },
      workflows: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(TOKENS_HELP);
  const file = values.file ?? process.env.SWITCHBOARD_TOKENS_FILE ?? join(dataDirOf(values['data-dir']), TOKENS_FILE);
  const action = positionals[0] ?? 'list';
  const existing = existsSync(file) ? readTokens(file) : [];
  if (action === 'list') {
    if (!existing.length) throw new CliError(`no tokens in ${file} (a hub generates them on its first start)`);
    const rows = existing.map((t) => [t.role, t.token, t.name ?? '', t.agentId ?? (t.workflows ? `workflows: ${t.workflows.join(',')}` : '')]);
    return void process.stdout.write(table(['ROLE', 'TOKEN', 'NAME', 'SCOPE'], rows) + '\n');
  }
  if (action !== 'create') throw new CliError(`unknown tokens action "${action}"; use list or create`);
  const role = Role.safeParse(values.role);
  if (!role.success) throw new CliError('--role must be admin, agent or monitor');
  const candidate = {
    token: newToken(role.data),
    role: role.data,
    ...(values.name ? { name: values.name } : {}),
    ...(values['agent-id'] ? { agentId: values['agent-id'] } : {}),
    ...(values.workflows ? { workflows: values.workflows.split(',').map((w) => w.trim()).filter(Boolean) } : {}),
  };
  const grant = TokenGrant.safeParse(candidate);
  if (!grant.success) throw new CliError(`invalid token: ${grant.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, JSON.stringify([...existing, grant.data], null, 2) + '\n', { mode: 0o600 });
  process.stdout.write(`${grant.data.token}\n`);
  process.stderr.write(`added a ${role.data} token to ${file}; send SIGHUP to a running hub (or restart it) to use it\n`);
}
