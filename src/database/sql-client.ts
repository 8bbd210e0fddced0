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

/**
 * An open transaction. Its connection pipelines (sends a statement without waiting for the answer to the one before),
 * so BEGIN goes out with the first statement and COMMIT with the statements `send` left unanswered: a transaction of
 * two statements is two round trips instead of four.
 */
export interface Tx extends Sql {
  /**
   * Sends a statement whose rows are not needed and does not wait for it: the commit goes out behind it and fails,
   * rolling the transaction back, if the statement failed.
   */
  send(text: string, values?: readonly unknown[]): void;
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
 * A transaction on a pipelining connection: BEGIN goes out with its first statement, in the same write, and COMMIT
 * behind the statements `send` left unanswered. A transaction that sent nothing sends neither.
 */
class PgTx extends PgSql implements Tx {
  private begun?: Promise<unknown>;
  private readonly sent: Promise<unknown>[] = [];

  constructor(private readonly client: PoolClient) {
    super(client);
  }

  override async rows<R extends object = Record<string, unknown>>(
    text: string,
    values: readonly unknown[] = [],
  ): Promise<R[]> {
    const begun = this.begin();
    const rows = settled(super.rows<R>(text, values));
    // Never the answer of a statement that ran outside the transaction.
    rethrow(await begun);
    return rethrow(await rows);
  }

  send(text: string, values: readonly unknown[] = []): void {
    void this.begin();
    // The COMMIT that follows, in the same turn of the event loop, joins it in one write.
    this.corked();
    this.sent.push(settled(super.rows(text, values)));
  }

  /**
   * COMMIT, behind whatever `send` left unanswered. A statement that failed had aborted the transaction, and Postgres
   * answered the COMMIT with a ROLLBACK: its error is thrown.
   */
  async commit(): Promise<void> {
    if (!this.begun) return;
    const committed = settled(this.client.query('COMMIT'));
    for (const outcome of [await this.begun, ...(await Promise.all(this.sent))]) rethrow(outcome);
    const result = rethrow(await committed) as { command?: string };
    if (result.command !== 'COMMIT') throw new Error(`transaction not committed: ${result.command}`);
  }

  /** Whether anything was sent: a ROLLBACK is needed only then. */
  get open(): boolean {
    return this.begun !== undefined;
  }

  private begin(): Promise<unknown> {
    if (!this.begun) {
      // Held in the socket's buffer until the statement that follows has been written too: one write for both.
      this.corked();
      this.begun = settled(this.client.query('BEGIN'));
    }
    return this.begun;
  }

  /**
   * Holds what is written to the connection until the current turn of the event loop ends (promise continuations
   * included: a nextTick runs after them), so the statements sent meanwhile leave in one write.
   */
  private corked(): void {
    const stream = this.client.connection.stream;
    stream.cork();
    process.nextTick(() => stream.uncork());
  }
}

/** A promise that never rejects: its error as its value, so a pipelined statement's failure is never unhandled. */
function settled<T>(promise: Promise<T>): Promise<T | Failed> {
  return promise.catch((error: Error) => new Failed(error));
}

class Failed {
  constructor(readonly error: Error) {}
}

function rethrow<T>(outcome: T | Failed): T {
  if (outcome instanceof Failed) throw outcome.error;
  return outcome;
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
    // Its connections pipeline: only transactions send a statement before the last one is answered (see PgTx).
    const pool = new Pool({
      connectionString: config.databaseUrl,
      ...poolOptions(config.databasePoolSize),
      pipeline: true,
    });
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
  async transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    const tx = new PgTx(client);
    try {
      const result = await work(tx);
      await tx.commit();
      return result;
    } catch (err) {
      // Behind every statement still under way on the connection: released only once they have all been answered.
      if (tx.open) await client.query('ROLLBACK').catch((rollbackErr: Error) => (broken = rollbackErr));
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
