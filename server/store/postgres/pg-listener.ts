import pg from 'pg';

export interface PgListenerOptions {
  /** The PostgreSQL connection string. */
  url: string;
  channel: string;
  /** How long to wait before connecting again once PostgreSQL is unreachable (ms). */
  retryMs: number;
  onNotify(payload: string): void;
  /** Called after each (re)connection, once it listens: notifications sent while away are lost. */
  onConnect?(): void;
  /** Called when the connection is lost (a retry follows). */
  onLost?(): void;
}

/** A connection of its own that LISTENs on a channel, connected again `retryMs` after PostgreSQL goes away. */
export class PgListener {
  private connection: pg.Client | undefined;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: PgListenerOptions) {}

  /** The listening connection, while it is up (queries on it run in order with what it is told). */
  get client(): pg.Client | undefined {
    return this.connection;
  }

  /** Connects and listens; rejects when PostgreSQL cannot be reached now. */
  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.url });
    // A lost connection is told by 'end' too; without this listener 'error' would end the process.
    client.on('error', () => undefined);
    client.on('notification', (message) => this.options.onNotify(message.payload ?? ''));
    client.on('end', () => {
      if (this.closed || this.connection !== client) return;
      this.connection = undefined;
      this.options.onLost?.();
      this.startLater();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.options.channel}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.closed) return void (await client.end().catch(() => undefined));
    this.connection = client;
    this.options.onConnect?.();
  }

  /** Stops listening. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    const client = this.connection;
    this.connection = undefined;
    await client?.end().catch(() => undefined);
  }

  private startLater(): void {
    if (this.closed) return;
    this.retry = setTimeout(() => void this.start().catch(() => this.startLater()), this.options.retryMs);
    this.retry.unref();
  }
}
