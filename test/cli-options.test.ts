import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { optionsFrom } from '../server/cli/start.ts';
import { HubOptions } from '../server/options.ts';
import { tempDir } from './helpers/hub.ts';

describe('switchboard start options', () => {
  it('takes the config file, then the environment, then the flags, each winning over the one before; SWITCHBOARD_FSYNC=0 turns fsync off', () => {
    const config = join(tempDir(), 'hub.json');
    writeFileSync(config, JSON.stringify({ fsync: true, port: 4800, host: '127.0.0.2' }));
    expect(optionsFrom(['--config', config], {})).toMatchObject({ fsync: true, port: 4800, host: '127.0.0.2' });
    expect(optionsFrom(['--config', config], { SWITCHBOARD_FSYNC: '0', SWITCHBOARD_PORT: '4900' })).toMatchObject({ fsync: false, port: 4900, host: '127.0.0.2' });
    expect(optionsFrom(['--config', config, '--fsync', '--port', '5000'], { SWITCHBOARD_FSYNC: '0', SWITCHBOARD_PORT: '4900' })).toMatchObject({ fsync: true, port: 5000 });
    expect(optionsFrom([], { SWITCHBOARD_FSYNC: 'true' })).toEqual({ fsync: true });
    expect(optionsFrom([], {})).toEqual({});
  });
});

describe('switchboard start tokens', () => {
  const list = [{ token: 'admin-token-from-config-0000', role: 'admin' }];

  it('lets a tokens source given later win over one given before, as every other option does, rather than refuse both', () => {
    const dir = tempDir();
    const config = join(dir, 'hub.json');
    const file = join(dir, 'tokens.json');
    writeFileSync(config, JSON.stringify({ tokens: list }));
    writeFileSync(file, JSON.stringify(list));
    const valid = (options: ReturnType<typeof optionsFrom>) => {
      const { tokens, tokensFile } = HubOptions.parse(options);
      return { tokens, tokensFile };
    };
    // The flag wins over the config file's list.
    expect(valid(optionsFrom(['--config', config, '--tokens', file], {}))).toEqual({ tokensFile: file, tokens: undefined });
    // The environment's file wins over the config file's list, the flag over the environment's list.
    expect(valid(optionsFrom(['--config', config], { SWITCHBOARD_TOKENS_FILE: file }))).toEqual({ tokensFile: file, tokens: undefined });
    expect(valid(optionsFrom(['--tokens', file], { SWITCHBOARD_TOKENS: JSON.stringify(list) }))).toEqual({ tokensFile: file, tokens: undefined });
    // The environment's list wins over the config file's tokensFile.
    writeFileSync(config, JSON.stringify({ tokensFile: file }));
    expect(valid(optionsFrom(['--config', config], { SWITCHBOARD_TOKENS: JSON.stringify(list) }))).toMatchObject({ tokens: [{ token: list[0]!.token }], tokensFile: undefined });
    // Both in one place is still refused: nothing says which is meant.
    expect(() => valid(optionsFrom([], { SWITCHBOARD_TOKENS: JSON.stringify(list), SWITCHBOARD_TOKENS_FILE: file }))).toThrow(/not both/);
  });
});
