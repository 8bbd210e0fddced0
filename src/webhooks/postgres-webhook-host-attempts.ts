import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { SqlClient } from '../database/sql-client';
import { HOST_WINDOW_MS, HostWindow, WebhookHostAttempts } from './webhook-host-attempts';

/** How often a process deletes the windows that are over, and how old they must be (a minute: any clock skew). */
const SWEEP_EVERY_MS = 10_000;
const KEEP_WINDOWS = 60;

/**
 * One statement counts the attempt: Postgres' clock picks the window (every process agrees on it), the row of
 * (host, window) is made or incremented under its row lock, and the count and the time left in the window come back.
 */
const ADD = `
WITH clock AS (SELECT extract(epoch FROM clock_timestamp()) * 1000 AS ms)
INSERT INTO webhook_host_attempts (host, window_start, attempts)
SELECT $1, floor(ms / ${HOST_WINDOW_MS})::bigint, $2::int FROM clock
ON CONFLICT (host, window_start) DO UPDATE SET attempts = webhook_host_attempts.attempts + $2::int
RETURNING attempts, ceil((window_start + 1) * ${HOST_WINDOW_MS} - (SELECT ms FROM clock))::int AS ms_before_next`;

/** Counted in the UNLOGGED table `webhook_host_attempts`, a row per host and second. */
@Injectable()
export class PostgresWebhookHostAttempts extends WebhookHostAttempts implements OnApplicationShutdown {
  private readonly logger = new Logger('WebhookHostAttempts');
  private readonly sweeper?: NodeJS.Timeout;

  constructor(
    config: AppConfig,
    private readonly sql: SqlClient,
  ) {
    super();
    if (config.webhook.hostRatePerSecond > 0) {
      this.sweeper = setInterval(() => void this.sweep(), SWEEP_EVERY_MS).unref();
    }
  }

  async add(host: string, count = 1): Promise<HostWindow> {
    const [row] = await this.sql.rows<{ attempts: number; ms_before_next: number }>(ADD, [host, count]);
    return { attempts: row.attempts, msBeforeNext: Math.max(0, row.ms_before_next) };
  }

  /** Deletes the windows that ended over a minute ago. */
  async sweep(): Promise<void> {
    await this.sql
      .rows(
        `DELETE FROM webhook_host_attempts
         WHERE window_start < floor(extract(epoch FROM clock_timestamp()) * 1000 / ${HOST_WINDOW_MS}) - $1`,
        [KEEP_WINDOWS],
      )
      .catch((err: Error) => this.logger.warn(`old host windows not swept: ${err.message}`));
  }

  onApplicationShutdown(): void {
    clearInterval(this.sweeper);
  }
}
