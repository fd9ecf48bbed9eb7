import { afterAll, beforeAll } from 'vitest';
import { postgresSkipReason, startPostgres, type PostgresServer } from './postgres.ts';

/**
 * One PostgreSQL for the calling test file: started before its tests (unless PostgreSQL is
 * missing: see postgresSkipReason) and destroyed after them. Call the result inside a test.
 */
export function postgresForFile(): () => PostgresServer {
  let server: PostgresServer | undefined;
  beforeAll(async () => {
    if (!postgresSkipReason()) server = await startPostgres();
  });
  afterAll(() => server?.destroy());
  return () => {
    if (!server) throw new Error('PostgreSQL was not started for this file');
    return server;
  };
}
