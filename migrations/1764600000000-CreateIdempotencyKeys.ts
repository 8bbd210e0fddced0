import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateIdempotencyKeys1764600000000 implements MigrationInterface {
  name = 'CreateIdempotencyKeys1764600000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // One row per (user, Idempotency-Key): claimed by an INSERT before the request runs, completed with its answer.
    await queryRunner.query(`
      CREATE TABLE idempotency_keys (
        user_id text NOT NULL,
        key text NOT NULL,
        request_hash text NOT NULL,
        state text NOT NULL CHECK (state IN ('in_flight', 'done')),
        status_code integer,
        response jsonb,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (user_id, key)
      )
    `);
    // The sweeper deletes rows past their 24 hours, oldest first.
    await queryRunner.query(`CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at)`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE idempotency_keys`);
  }
}
