import { Injectable, Module } from '@nestjs/common';
import { providerByBackend } from '../common/backend-provider';
import { SqlClient } from '../database/sql-client';
import { RedisService } from '../queue/redis.service';
import type { AdminSession } from './admin-session';

/**
 * The dashboard sessions signed out before they expire, shared by every API process (a cookie is valid on all of
 * them). When the list cannot be read, a session counts as signed out: a dashboard is worth less than its lock.
 */
export abstract class AdminSessionRevocations {
  abstract revoke(session: AdminSession): Promise<void>;
  abstract isRevoked(session: AdminSession): Promise<boolean>;
}

/** In Redis: a key per signed-out session, expiring with it. */
@Injectable()
export class RedisAdminSessionRevocations extends AdminSessionRevocations {
  constructor(private readonly redis: RedisService) {
    super();
  }

  async revoke(session: AdminSession): Promise<void> {
    await this.redis.client.set(this.key(session), '1', 'EXAT', session.expiresAt);
  }

  async isRevoked(session: AdminSession): Promise<boolean> {
    try {
      return (await this.redis.client.exists(this.key(session))) === 1;
    } catch {
      return true;
    }
  }

  private key(session: AdminSession): string {
    return this.redis.key('admin-session', 'revoked', session.id);
  }
}

/** In Postgres (QUEUE_BACKEND=postgres): a row per signed-out session; rows past their session's end are swept. */
@Injectable()
export class PostgresAdminSessionRevocations extends AdminSessionRevocations {
  constructor(private readonly sql: SqlClient) {
    super();
  }

  async revoke(session: AdminSession): Promise<void> {
    await this.sql.rows(
      `WITH swept AS (DELETE FROM admin_session_revocations WHERE expires_at < now())
       INSERT INTO admin_session_revocations (session_id, expires_at) VALUES ($1, to_timestamp($2))
       ON CONFLICT (session_id) DO NOTHING`,
      [session.id, session.expiresAt],
    );
  }

  async isRevoked(session: AdminSession): Promise<boolean> {
    try {
      const rows = await this.sql.rows(
        `SELECT 1 FROM admin_session_revocations WHERE session_id = $1 AND expires_at > now()`,
        [session.id],
      );
      return rows.length > 0;
    } catch {
      return true;
    }
  }
}

/** The dashboard's shared state, for the API role (the dashboard itself is mounted on Fastify by app.factory.ts). */
@Module({
  providers: [
    providerByBackend(AdminSessionRevocations, {
      redis: RedisAdminSessionRevocations,
      postgres: PostgresAdminSessionRevocations,
    }),
  ],
  exports: [AdminSessionRevocations],
})
export class DashboardModule {}
