import { describe, expect, it } from 'vitest';
import { pill } from '../server/http/dashboard/view.ts';

describe("the dashboard's state pills", () => {
  it('write every underscore of a state as a space, and escape the state and its title', () => {
    expect(pill('no_capable_agent', 'needs <gpu>')).toBe('<span class="pill s-no_capable_agent" title="needs &#60;gpu&#62;">no capable agent</span>');
    expect(pill('in_progress')).toBe('<span class="pill s-in_progress">in progress</span>');
  });
});
