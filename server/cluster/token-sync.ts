import { PgListener } from '../store/postgres/pg-listener.ts';
import type { TokenGrant } from '../../shared/schemas/tokens.ts';
import type { Logger } from '../logger.ts';
import { readClusterTokens, TOKENS_CHANNEL } from '../store/postgres/pg-tokens.ts';

export interface TokenSyncOptions {
  /** The cluster's PostgreSQL connection string. */
  url: string;
  partition: string;
  /** How long to wait before connecting again once PostgreSQL is unreachable (ms). */
  retryMs: number;
  /** Told the partition's tokens each time they may have changed, in the order they were read. */
  onGrants(grants: TokenGrant[]): void;
  log: Logger;
}

/**
 * Keeps a node's tokens those of the cluster: listens on `sb_tokens` with a connection of its own
 * and reads the tokens again when told they changed, and after each (re)connection, since
 * notifications sent while it was away are lost. A lost connection is retried every `retryMs`.
 * @example const sync = new TokenSync({ url, partition: 'main', retryMs: 1000, onGrants: apply, log }); await sync.start();
 */
export class TokenSync {
  private readonly listener: PgListener;
  private closed = false;
  /** The read in progress; reads never overlap, so changes are applied in order. */
  private reading: Promise<void> = Promise.resolve();
  /** A read is queued and not sent yet: it will see any change notified meanwhile. */
  private readQueued = false;

  constructor(private readonly options: TokenSyncOptions) {
    this.listener = new PgListener({
      url: options.url,
      channel: TOKENS_CHANNEL,
      retryMs: options.retryMs,
      onNotify: (partition) => partition === options.partition && this.read(),
      // Listening first, then reading: a change made in between is in what is read.
      onConnect: () => this.read(),
      onLost: () => options.log.warn('token sync: lost PostgreSQL; token changes apply once it is back'),
    });
  }

  /** Listens, then reads the tokens once; rejects when PostgreSQL cannot be reached now. */
  async start(): Promise<void> {
    await this.listener.start();
    await this.reading;
  }

  /** Reads the tokens now (after any read under way) and applies them; rejects, keeping the tokens in force, when they cannot be read. */
  refresh(): Promise<void> {
    const done = this.reading.then(() => this.readNow());
    this.reading = done.catch(() => undefined);
    return done;
  }

  /** Stops listening. */
  async close(): Promise<void> {
    this.closed = true;
    await this.reading;
    await this.listener.close();
  }

  /** Queues a read, unless one is queued and not sent yet (it will see this change too). */
  private read(): void {
    if (this.readQueued) return;
    this.readQueued = true;
    this.reading = this.reading
      .then(() => {
        this.readQueued = false;
        return this.readNow();
      })
      .catch((error: Error) => this.options.log.warn({ err: error }, `token sync: ${error.message}`));
  }

  private async readNow(): Promise<void> {
    if (this.closed) return;
    // Reads go through the listening connection, one at a time, so they are applied in the order of the changes.
    const client = this.listener.client;
    if (!client) throw new Error('PostgreSQL is unreachable; the tokens in force are kept');
    const grants = await readClusterTokens(client, this.options.partition);
    if (!grants) throw new Error(`partition ${this.options.partition} has no tokens in PostgreSQL; the tokens in force are kept`);
    if (!this.closed) this.options.onGrants(grants);
  }
}
