import * as z from 'zod';
import { Id } from './common.ts';

/** The roles a token can grant. admin is the control role. */
export const Role = z.enum(['admin', 'agent', 'monitor']);
export type Role = z.infer<typeof Role>;

/**
 * What a token may be. Visible ASCII: a token also travels in an HTTP Authorization header, which
 * cannot carry other characters as they are (and trims the spaces at its ends).
 */
export const TokenValue = z
  .string()
  .min(8)
  .max(200)
  .regex(/^[!-~]+$/, 'a token must be printable ASCII without spaces, as it travels in an HTTP Authorization header');

/** One access token and what it allows. */
export const TokenGrant = z
  .strictObject({
    token: TokenValue,
    role: Role,
    /** A readable name for logs and provenance; defaults to the role. */
    name: z.string().max(100).optional(),
    /**
     * agent tokens: the only agentId this token may register as. An agent token without it may
     * register as any agent (a fleet token): give each agent its own bound token where agents do
     * not trust each other.
     */
    agentId: Id.optional(),
    /** monitor tokens: the only workflows this token may see. */
    workflows: z.array(Id).max(10_000).optional(),
  })
  .refine((grant) => grant.agentId === undefined || grant.role === 'agent', { message: 'agentId binds agent tokens only', path: ['agentId'] })
  .refine((grant) => grant.workflows === undefined || grant.role === 'monitor', { message: 'workflows scopes monitor tokens only', path: ['workflows'] });
export type TokenGrant = z.infer<typeof TokenGrant>;

/** A list of tokens a hub can run with: at least one, and each token granted once (which grant would hold is not for the order to decide). */
export const TokenList = z
  .array(TokenGrant)
  .min(1)
  .superRefine((grants, ctx) => {
    const first = new Map<string, number>();
    grants.forEach((grant, at) => {
      const earlier = first.get(grant.token);
      // The entries are named by place: an error message must not show a token.
      if (earlier !== undefined) ctx.addIssue({ code: 'custom', path: [at, 'token'], message: `the same token as entry ${earlier}: each token is granted once` });
      else first.set(grant.token, at);
    });
  });
