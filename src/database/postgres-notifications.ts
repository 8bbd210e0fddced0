import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Client, escapeIdentifier } from 'pg';
import { AppConfig } from '../config/app-config';
import { SqlClient } from './sql-client';

/** Postgres refuses a NOTIFY payload of 8,000 bytes or more. */
export const MAX_NOTIFY_PAYLOAD_BYTES = 7999;

export type NotificationHandler = (channel: string, payload: string) => void;

const FIRST_RETRY_MS = 250;
const LAST_RETRY_MS = 5000;
/** Notifications sent in one statement at most (the rest wait for the next one), unless one group is larger. */
const BATCH = 500;

export interface Notification {
  channel: string;
  payload: string;
}

/** Notifications sent together: they always go in the same statement. */
interface Pending {
  notifications: Notification[];
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Postgres LISTEN/NOTIFY for the whole process. Listening happens on one connection of its own (a pooled connection
 * would lose its LISTENs when handed back), made on first use, made again after it breaks (Postgres restarted),
 * listening again to every channel it listened to. Notifications sent meanwhile are lost, as Redis pub/sub messages
 * are: callers treat them as hints and read the rows for the truth.
 *
 * Sending goes through the pool, one statement at a time: what this process sends arrives everywhere in the order it was
 * sent (a pool would otherwise let a later notification's statement commit first). Notifications queued while one
 * statement runs go together in the next.
 */
@Injectable()
export class PostgresNotifications implements OnApplicationShutdown {
  private readonly logger = new Logger('PostgresNotifications');
  private readonly channels = new Set<string>();
  private readonly handlers = new Set<NotificationHandler>();
  /** The connection being made or in use, */
  private current?: Client;
  /** and the same once it listens. */
  private client?: Client;
  private connection?: Promise<Client>;
  private retryMs = FIRST_RETRY_MS;
  private retryTimer?: NodeJS.Timeout;
  private closed = false;
  private readonly queue: Pending[] = [];
  private sending = false;
  /** The last statement sent on the listener connection: each next one waits for it (see `inOrder`). */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly config: AppConfig,
    private readonly sql: SqlClient,
  ) {}

  /** Calls `handler` with every notification of every channel this process listens to. */
  onNotification(handler: NotificationHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** Resolves once Postgres has confirmed the LISTEN: any notification committed after that reaches this process. */
  async listen(channel: string): Promise<void> {
    this.channels.add(channel);
    // Connected: the statement takes its place now, after those asked for before this call and before later ones.
    const client = this.client ?? (await this.connect());
    await this.inOrder(() => client.query(`LISTEN ${escapeIdentifier(channel)}`));
  }

  /** The channels Postgres says the listener connection listens to now (none while it is not connected). */
  async listenedChannels(): Promise<string[]> {
    const client = this.client;
    if (!client) return [];
    const { rows } = await this.inOrder(() =>
      client.query<{ channel: string }>('SELECT pg_listening_channels() AS channel'),
    );
    return rows.map((r) => r.channel);
  }

  /** Stops listening; statements on the connection run in order, so a later `listen` of the channel wins. */
  unlisten(channel: string): void {
    this.channels.delete(channel);
    const client = this.client;
    if (!client) return;
    this.inOrder(() => client.query(`UNLISTEN ${escapeIdentifier(channel)}`)).catch((err: Error) =>
      this.logger.warn(`UNLISTEN ${channel} failed: ${err.message}`),
    );
  }

  /** Channels listened to now. */
  get listening(): ReadonlySet<string> {
    return this.channels;
  }

  /** Sends one notification; resolves once it is committed. `payload` must be under 8,000 bytes. */
  notify(channel: string, payload: string): Promise<void> {
    return this.notifyTogether([{ channel, payload }]);
  }

  /** Sends notifications in one statement (one round trip), in this order; resolves once they are committed. */
  notifyTogether(notifications: Notification[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ notifications, resolve, reject });
      void this.send();
    });
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const client = this.current;
    this.current = this.client = undefined;
    this.connection = undefined;
    await client?.end().catch(() => undefined);
  }

  private async send(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.nextBatch();
        const notifications = batch.flatMap((pending) => pending.notifications);
        try {
          // unnest yields its rows in array order, and Postgres delivers a transaction's notifications in the
          // order they were made.
          await this.sql.rows(`SELECT count(pg_notify(c, p)) FROM unnest($1::text[], $2::text[]) AS n(c, p)`, [
            notifications.map((n) => n.channel),
            notifications.map((n) => n.payload),
          ]);
          for (const n of batch) n.resolve();
        } catch (err) {
          for (const n of batch) n.reject(err as Error);
        }
      }
    } finally {
      this.sending = false;
    }
  }

  /** The groups the next statement sends: about BATCH notifications, never a group split. */
  private nextBatch(): Pending[] {
    let count = 0;
    let groups = 0;
    while (groups < this.queue.length && (groups === 0 || count + this.queue[groups].notifications.length <= BATCH)) {
      count += this.queue[groups].notifications.length;
      groups += 1;
    }
    return this.queue.splice(0, groups);
  }

  /**
   * Runs statements on the listener connection one at a time, in the order they were asked for (a later LISTEN or
   * UNLISTEN of a channel wins), instead of leaving them to queue inside `pg`'s client, which pg 9 will refuse.
   */
  private inOrder<T>(statement: () => Promise<T>): Promise<T> {
    const result = this.tail.then(statement, statement);
    this.tail = result.catch(() => undefined);
    return result;
  }

  private connect(): Promise<Client> {
    if (this.closed) return Promise.reject(new Error('shutting down'));
    if (this.connection) return this.connection;
    const client = new Client({
      connectionString: this.config.databaseUrl,
      connectionTimeoutMillis: 3000,
      application_name: 'media-tasks-listener',
      keepAlive: true,
    });
    client.on('notification', (message) => this.dispatch(message.channel, message.payload ?? ''));
    client.on('error', (err: Error) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    this.current = client;
    const connection = (async () => {
      await client.connect();
      this.client = client;
      for (const channel of this.channels)
        await this.inOrder(() => client.query(`LISTEN ${escapeIdentifier(channel)}`));
      if (this.retryMs !== FIRST_RETRY_MS) this.logger.log('listener connection restored');
      this.retryMs = FIRST_RETRY_MS;
      return client;
    })();
    this.connection = connection;
    connection.catch((err: Error) => this.lost(client, err));
    return connection;
  }

  /** Forgets a broken connection and, while anything is listened to, tries again a little later each time. */
  private lost(client: Client, err?: Error): void {
    if (this.closed || client !== this.current) return;
    this.current = this.client = undefined;
    this.connection = undefined;
    client.end().catch(() => undefined);
    this.logger.warn(`listener connection lost${err ? `: ${err.message}` : ''}; retrying in ${this.retryMs} ms`);
    if (this.channels.size === 0 || this.retryTimer) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, LAST_RETRY_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.channels.size > 0) this.connect().catch(() => undefined);
    }, delay).unref();
  }

  private dispatch(channel: string, payload: string): void {
    for (const handler of this.handlers) {
      try {
        handler(channel, payload);
      } catch (err) {
        this.logger.warn(`notification handler for ${channel} failed: ${(err as Error).message}`);
      }
    }
  }
}
