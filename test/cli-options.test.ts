import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { optionsFrom } from '../server/cli/start.ts';
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
