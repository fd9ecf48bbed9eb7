import { describe, expect, it } from 'vitest';
import { domain, SETTINGS } from '../helpers/domain.ts';

describe('agent presence (domain, manual clock)', () => {
  it('marks an idle agent offline once it has been gone graceMs, and back idle when it registers again', () => {
    const d = domain();
    d.register('idle-one');
    d.run('agent.disconnect', { agentId: 'idle-one' });
    d.advance(SETTINGS.graceMs - 1);
    expect(d.run('hub.sweep', {}).reply.offline).toBe(0);
    expect(d.state.agents!['idle-one']!.status).toBe('idle');
    d.advance(1);
    expect(d.run('hub.sweep', {}).reply.offline).toBe(1);
    expect(d.state.agents!['idle-one']).toMatchObject({ status: 'offline', load: 0 });
    d.register('idle-one');
    expect(d.state.agents!['idle-one']!.status).toBe('idle');
  });
});
