import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateCacheState1766300000100 implements MigrationInterface {
  name = 'CreateCacheState1766300000100';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // The result cache's shared state for the Postgres backend (QUEUE_BACKEND=postgres): which task calls the provider
    // for identical tasks in flight together, the tasks waiting for its result, and the statistics counters. UNLOGGED,
    // as in Redis: a claim lapses on its own and counters are statistics. Times are epoch milliseconds.
    await queryRunner.query(`
      CREATE UNLOGGED TABLE cache_first_calls (
        key text PRIMARY KEY,
        task_id text NOT NULL,
        expires_at bigint NOT NULL
      )
    `);
    await queryRunner.query(`
      CREATE UNLOGGED TABLE cache_first_call_waiters (
        key text NOT NULL,
        task_id text NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (key, task_id)
      )
    `);
    await queryRunner.query(`
      CREATE UNLOGGED TABLE cache_counters (
        name text PRIMARY KEY,
        count bigint NOT NULL DEFAULT 0
      )
    `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE cache_counters`);
    await queryRunner.query(`DROP TABLE cache_first_call_waiters`);
    await queryRunner.query(`DROP TABLE cache_first_calls`);
  }
}
