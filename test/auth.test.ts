import { describe, expect, it } from 'vitest';
import { connectControl } from '../client-sdk/index.ts';
import { codeOf } from './helpers/errors.ts';
import { startHub, TOKENS } from './helpers/hub.ts';

describe('authentication', () => {
  it('refuses a control connection without a valid admin token', async () => {
    const hub = await startHub();
    expect(await codeOf(connectControl({ url: hub.url, token: 'wrong-token-value' }))).toBe('UNAUTHENTICATED');
    expect(await codeOf(connectControl({ url: hub.url, token: '' }))).toBe('UNAUTHENTICATED');
    expect(await codeOf(connectControl({ url: hub.url, token: TOKENS.monitor }))).toBe('FORBIDDEN');
    expect(await codeOf(connectControl({ url: hub.url, token: TOKENS.admin }))).toBe('resolved');
  });
});
