import { Logger } from '@nestjs/common';
import { Client } from 'pg';

const RECONNECT_DELAY_MS = 1000;

/**
 * LISTEN on one Postgres channel over a connection of its own (a pooled connection would be handed to others and
 * lose the LISTEN). When the connection breaks (Postgres restarted) it connects and listens again by itself, once a
 * second until it succeeds; notifications sent while it was away are lost.
 */
export class PgChannelListener {
  private readonly logger = new Logger('PgChannelListener');
  private client?: Client;
  private retryTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly databaseUrl: string,
    private readonly channel: string,
    private readonly onNotification: (payload: string | undefined) => void,
  ) {}

  /** Resolves once listening (or after the first attempt failed: it keeps trying in the background). */
  async start(): Promise<void> {
    await this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new Client({ connectionString: this.databaseUrl, application_name: 'media-tasks-listener' });
    client.on('notification', (message) => {
      if (message.channel === this.channel) this.onNotification(message.payload);
    });
    const lost = (err?: Error) => {
      if (this.client !== client) return;
      this.client = undefined;
      if (err) this.logger.warn(`listening on ${this.channel} stopped: ${err.message}; connecting again`);
      void client.end().catch(() => undefined);
      this.scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdentifier(this.channel)}`);
      if (this.closed) {
        await client.end().catch(() => undefined);
        return;
      }
      this.client = client;
    } catch (err) {
      void client.end().catch(() => undefined);
      this.logger.warn(`cannot listen on ${this.channel}: ${(err as Error).message}; trying again`);
      this.scheduleReconnect();
    }
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect(), RECONNECT_DELAY_MS);
    this.retryTimer.unref();
  }
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
