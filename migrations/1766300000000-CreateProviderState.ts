import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateProviderState1766300000000 implements MigrationInterface {
  name = 'CreateProviderState1766300000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // Live provider health, slot leases and the line of tasks waiting for a slot, for the Postgres backend
    // (QUEUE_BACKEND=postgres). UNLOGGED: written on every provider call and worth nothing after a crash (leases lapse
    // and health is relearned within a few calls), as in Redis; Postgres skips the write-ahead log for them.
    // Times are epoch milliseconds from the processes' clocks, as the Redis backend keeps them.
    await queryRunner.query(`
      CREATE UNLOGGED TABLE provider_health (
        provider text PRIMARY KEY,
        success double precision,
        latency double precision,
        consecutive_failures integer NOT NULL DEFAULT 0,
        circuit text NOT NULL DEFAULT 'closed',
        opened_at bigint,
        trial_until bigint,
        line_expires_at bigint,
        calls bigint NOT NULL DEFAULT 0,
        failures bigint NOT NULL DEFAULT 0,
        CONSTRAINT provider_health_circuit_check CHECK (circuit IN ('closed', 'open', 'half_open'))
      )
    `);
    await queryRunner.query(`
      CREATE UNLOGGED TABLE provider_leases (
        provider text NOT NULL,
        task_id text NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (provider, task_id)
      )
    `);
    await queryRunner.query(`
      CREATE UNLOGGED TABLE provider_line (
        provider text NOT NULL,
        task_id text NOT NULL,
        ticket double precision NOT NULL,
        seen_at bigint NOT NULL,
        PRIMARY KEY (provider, task_id)
      )
    `);
    // The first in line: lowest ticket, then task id (the order of a Redis sorted set).
    await queryRunner.query(`CREATE INDEX provider_line_order_idx ON provider_line (provider, ticket, task_id)`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE provider_line`);
    await queryRunner.query(`DROP TABLE provider_leases`);
    await queryRunner.query(`DROP TABLE provider_health`);
  }
}
