import pg from 'pg';

/**
 * How long a query that moves a whole snapshot or archived workflow (up to hundreds of MB) may
 * take before it is given up: the ordinary bound, a lease's term, would cut such a query short.
 */
export const BODY_TIMEOUT_MS = 10 * 60_000;

/**
 * Connection settings under which a connect or a query unanswered for `timeoutMs` is given up
 * with an error: on a connection that died without a word (PostgreSQL's host lost, a NAT that
 * forgot the flow) it would otherwise wait, and hold whatever waits on it, for good.
 */
export function boundedConnection(url: string, timeoutMs: number): pg.ClientConfig {
  return { connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs };
}

/**
 * A pool of `max` bounded connections (`boundedConnection`); a query given up drops its connection
 * from the pool. `onError` hears of idle connections lost, which must not end the process.
 */
export function boundedPool(url: string, max: number, timeoutMs: number, onError: (error: Error) => void = () => undefined): pg.Pool {
  const pool = new pg.Pool({ ...boundedConnection(url, timeoutMs), max });
  pool.on('error', onError);
  return pool;
}

/** A query given `BODY_TIMEOUT_MS`, for one that moves a whole snapshot or archived workflow. */
export function bodyQuery(text: string, values: unknown[]): pg.QueryConfig & { query_timeout: number } {
  return { text, values, query_timeout: BODY_TIMEOUT_MS };
}
