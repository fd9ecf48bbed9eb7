import pg from 'pg';
import { boundedConnection } from './pg-pool.ts';

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

/**
 * How long a ping may go unanswered before the listening connection counts as dead: five pings'
 * time, and never less than two seconds (a busy PostgreSQL answering late is not a dead connection).
 */
const silenceMs = (retryMs: number) => Math.max(5 * retryMs, 2000);

/**
 * A connection of its own that LISTENs on a channel, connected again `retryMs` after PostgreSQL
 * goes away. It is pinged every `retryMs`: a connection a NAT or a firewall forgot dies without a
 * word (no reset, no end), and a listener that waited on it would miss every notification for good.
 */
export class PgListener {
  private connection: pg.Client | undefined;
  private retry: NodeJS.Timeout | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: PgListenerOptions) {}

  /** The listening connection, while it is up (queries on it run in order with what it is told). */
  get client(): pg.Client | undefined {
    return this.connection;
  }

  /** Connects and listens; rejects when PostgreSQL cannot be reached now. */
  async start(): Promise<void> {
    // A connect or LISTEN unanswered is given up as a silent ping is, and made anew retryMs later.
    const client = new pg.Client(boundedConnection(this.options.url, silenceMs(this.options.retryMs)));
    // A lost connection is told by 'end' too; without this listener 'error' would end the process.
    client.on('error', () => undefined);
    client.on('notification', (message) => this.options.onNotify(message.payload ?? ''));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${this.options.channel}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.closed) return void (await client.end().catch(() => undefined));
    this.connection = client;
    this.watch(client);
    this.options.onConnect?.();
  }

  /** Stops listening. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    clearInterval(this.pinger);
    const client = this.connection;
    this.connection = undefined;
    await client?.end().catch(() => undefined);
  }

  /** Pings the connection every `retryMs` (one ping at a time); one silent for silenceMs is dropped and made anew. */
  private watch(client: pg.Client): void {
    clearInterval(this.pinger);
    let pending = false;
    let sentAt = 0;
    let lastBeat = performance.now();
    this.pinger = setInterval(() => {
      const now = performance.now();
      // This process was held (stopped, or a long pause): an answer may be waiting unread; the ping gets its time again.
      if (now - lastBeat > 2 * this.options.retryMs + 1000) sentAt = now;
      lastBeat = now;
      if (pending) {
        if (now - sentAt < silenceMs(this.options.retryMs)) return;
        // Its socket is destroyed: ending it politely would wait for a peer that no longer answers.
        (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
        return this.lost(client);
      }
      pending = true;
      sentAt = now;
      client.query('SELECT 1').then(
        () => (pending = false),
        () => undefined,
      );
    }, this.options.retryMs);
    this.pinger.unref();
  }

  /** The connection is gone (ended, or silent too long): told once, and made anew `retryMs` later. */
  private lost(client: pg.Client): void {
    if (this.closed || this.connection !== client) return;
    this.connection = undefined;
    clearInterval(this.pinger);
    this.options.onLost?.();
    this.startLater();
  }

  private startLater(): void {
    if (this.closed) return;
    this.retry = setTimeout(() => void this.start().catch(() => this.startLater()), this.options.retryMs);
    this.retry.unref();
  }
}
