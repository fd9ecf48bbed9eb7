import { describe, expect, it } from 'vitest';
import { browsersRefuse } from '../server/http/blocked-ports.ts';
import { startHub } from './helpers/hub.ts';
import { logRecorder } from './helpers/log-recorder.ts';

const WARNING = 'browsers and fetch() refuse this port: the SDKs connect, but no browser opens the dashboard; choose another port for it';

describe('a hub on a port browsers refuse', () => {
  it('warns at start that no browser opens its dashboard there, and says nothing on another port', async () => {
    const log = logRecorder('info');
    let port: number | undefined;
    // Any of the Fetch standard's bad ports that is free here.
    for (const candidate of [10080, 6666, 6667, 6668, 6669, 6665]) {
      try {
        await startHub({ port: candidate, logLevel: 'info' }, { logger: log.logger });
        port = candidate;
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      }
    }
    expect(port).toBeDefined();
    expect(log.find(WARNING)).toEqual([expect.objectContaining({ port })]);

    const other = logRecorder('info');
    await startHub({ logLevel: 'info' }, { logger: other.logger });
    expect(other.find('hub listening')).toHaveLength(1);
    expect(other.find(WARNING)).toHaveLength(0);
    expect([browsersRefuse(6000), browsersRefuse(4700), browsersRefuse(10080)]).toEqual([true, false, true]);
  });
});
