import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { InjectDataSource } from '@nestjs/typeorm';
import { Pool, PoolClient } from 'pg';
import { DataSource, EntityTarget, ObjectLiteral } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { poolOptions } from './data-source';
import { EntityRows } from './entity-rows';

/** Somewhere a hand-written statement can run: the pool (each statement on its own) or one open transaction. */
export interface Sql {
  /**
   * The rows of a statement, run as a named prepared statement: Postgres plans it once per connection instead of on
   * every call (the hot statements' CTEs cost more to plan than to run). The name is a hash of the text, so keep the
   * texts few: built from a bounded set of shapes, never with values inlined.
   */
  rows<R extends object = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<R[]>;
}

const names = new Map<string, string>();

function statementName(text: string): string {
  let name = names.get(text);
  if (!name) {
    name = `p${createHash('sha1').update(text).digest('base64url').slice(0, 20)}`;
    names.set(text, name);
  }
  return name;
}

class PgSql implements Sql {
  constructor(private readonly target: Pool | PoolClient) {}

  async rows<R extends object = Record<string, unknown>>(text: string, values: readonly unknown[] = []): Promise<R[]> {
    const result = await this.target.query<R>({ name: statementName(text), text, values: values as unknown[] });
    return result.rows;
  }
}

/**
 * The one way to run hand-written SQL (the grouped transitions, the delivery claims, the quota lock, statistics):
 * a `pg` pool of its own, made from the same URL and options as TypeORM's, closed at shutdown. Entity reads and
 * plain writes go through TypeORM's repositories instead.
 */
@Injectable()
export class SqlClient extends PgSql implements OnApplicationShutdown {
  private readonly logger = new Logger('SqlClient');
  private readonly pool: Pool;

  constructor(
    config: AppConfig,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {
    const pool = new Pool({ connectionString: config.databaseUrl, ...poolOptions(config.databasePoolSize) });
    super(pool);
    this.pool = pool;
    // An idle connection that breaks (Postgres restarted) is dropped from the pool; without a listener it would
    // take the process down.
    pool.on('error', (err) => this.logger.warn(`idle database connection lost: ${err.message}`));
  }

  /** The insert statement and row mapping of an entity's table, for statements written by hand. */
  table<E extends ObjectLiteral>(entity: EntityTarget<E>): EntityRows<E> {
    return new EntityRows<E>(this.dataSource.getMetadata(entity));
  }

  /** Runs `work` in one transaction on a connection of its own: committed when it resolves, rolled back if not. */
  async transaction<T>(work: (tx: Sql) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(new PgSql(client));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: Error) => (broken = rollbackErr));
      throw err;
    } finally {
      // A connection that could not roll back is closed rather than handed to the next caller.
      client.release(broken);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.pool.end();
  }
}
