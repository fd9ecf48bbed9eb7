import pg from 'pg';
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
  private client: pg.Client | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  /** The read in progress; reads never overlap, so changes are applied in order. */
  private reading: Promise<void> = Promise.resolve();
  /** A read is queued and not sent yet: it will see any change notified meanwhile. */
  private readQueued = false;

  constructor(private readonly options: TokenSyncOptions) {}

  /** Listens, then reads the tokens once; rejects when PostgreSQL cannot be reached now. */
  async start(): Promise<void> {
    await this.connect();
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
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await this.reading;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.url });
    // A lost connection is told by 'end' too; without this listener 'error' would end the process.
    client.on('error', () => undefined);
    client.on('notification', (message) => {
      if (message.payload === this.options.partition) this.read();
    });
    client.on('end', () => {
      if (this.closed || this.client !== client) return;
      this.client = undefined;
      this.options.log.warn('token sync: lost PostgreSQL; token changes apply once it is back');
      this.connectLater();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${TOKENS_CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.closed) return void (await client.end().catch(() => undefined));
    this.client = client;
    // Listening first, then reading: a change made in between is in what is read.
    this.read();
  }

  private connectLater(): void {
    if (this.closed) return;
    this.retry = setTimeout(() => {
      this.connect().then(
        () => this.options.log.info('token sync: PostgreSQL is back'),
        () => this.connectLater(),
      );
    }, this.options.retryMs);
    this.retry.unref();
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
    const client = this.client;
    if (!client) throw new Error('PostgreSQL is unreachable; the tokens in force are kept');
    const grants = await readClusterTokens(client, this.options.partition);
    if (!grants) throw new Error(`partition ${this.options.partition} has no tokens in PostgreSQL; the tokens in force are kept`);
    if (!this.closed) this.options.onGrants(grants);
  }
}
