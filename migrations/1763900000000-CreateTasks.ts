import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateTasks1763900000000 implements MigrationInterface {
  name = 'CreateTasks1763900000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE tasks (
        id uuid PRIMARY KEY,
        user_id text NOT NULL,
        type text NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'queued', 'processing', 'completed', 'failed', 'cancelled')),
        priority text NOT NULL CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
        progress real NOT NULL DEFAULT 0,
        input jsonb NOT NULL,
        output jsonb,
        error jsonb,
        provider text,
        attempts integer NOT NULL DEFAULT 0,
        cost_amount numeric(12, 6),
        cost_currency text,
        cached boolean NOT NULL DEFAULT false,
        options jsonb NOT NULL DEFAULT '{}',
        webhook_url text,
        webhook_secret text,
        webhook_events text[],
        metadata jsonb,
        event_seq integer NOT NULL DEFAULT 0,
        provider_job jsonb,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        started_at timestamptz,
        completed_at timestamptz
      )
    `);
    // Keyset pagination of a user's tasks, newest first (with or without a type or status filter applied after).
    await queryRunner.query(`CREATE INDEX tasks_user_created_idx ON tasks (user_id, created_at DESC, id DESC)`);
    // Admin listing across users.
    await queryRunner.query(`CREATE INDEX tasks_created_idx ON tasks (created_at DESC, id DESC)`);
    await queryRunner.query(`CREATE INDEX tasks_status_idx ON tasks (status)`);
    // The reconciler's scan and queue positions only ever look at unfinished tasks: keep that index small.
    await queryRunner.query(
      `CREATE INDEX tasks_unfinished_idx ON tasks (status, updated_at) WHERE status IN ('pending', 'queued', 'processing')`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE tasks`);
  }
}
