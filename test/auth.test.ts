import { describe, expect, it } from 'vitest';
import { connectControl, HubError } from '../client-sdk/index.ts';
import { startHub, TOKENS } from './helpers/hub.ts';

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'connected';
  } catch (error) {
    return error instanceof HubError ? error.code : String(error);
  }
}

describe('authentication', () => {
  it('refuses a control connection without a valid admin token', async () => {
    const hub = await startHub();
    expect(await refusal(connectControl({ url: hub.url, token: 'wrong-token-value' }))).toBe('UNAUTHENTICATED');
    expect(await refusal(connectControl({ url: hub.url, token: '' }))).toBe('UNAUTHENTICATED');
    expect(await refusal(connectControl({ url: hub.url, token: TOKENS.monitor }))).toBe('FORBIDDEN');
    expect(await refusal(connectControl({ url: hub.url, token: TOKENS.admin }))).toBe('connected');
  });
});
