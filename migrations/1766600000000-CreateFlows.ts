import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateFlows1766600000000 implements MigrationInterface {
  name = 'CreateFlows1766600000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // A flow: its current definition (steps in flow_versions), its trigger (the hook secret stays here, never shown).
    await queryRunner.query(`
      CREATE TABLE flows (
        id uuid PRIMARY KEY,
        user_id text NOT NULL,
        name text NOT NULL,
        description text,
        version int NOT NULL,
        trigger jsonb NOT NULL,
        hook_id text,
        priority text NOT NULL,
        webhook_url text,
        webhook_events text[],
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        deleted_at timestamptz
      )
    `);
    await queryRunner.query(`CREATE UNIQUE INDEX flows_hook_id_key ON flows (hook_id)`);
    await queryRunner.query(`CREATE INDEX flows_user_created_idx ON flows (user_id, created_at DESC, id DESC)`);
    // Every version a flow had: a run keeps the one it started with.
    await queryRunner.query(`
      CREATE TABLE flow_versions (
        flow_id uuid NOT NULL,
        version int NOT NULL,
        steps jsonb NOT NULL,
        trigger jsonb NOT NULL,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (flow_id, version)
      )
    `);
    await queryRunner.query(`
      CREATE TABLE flow_runs (
        id uuid PRIMARY KEY,
        flow_id uuid NOT NULL,
        version int NOT NULL,
        user_id text NOT NULL,
        status text NOT NULL,
        trigger jsonb,
        source text NOT NULL,
        dedupe_key text,
        current_step text,
        round int NOT NULL,
        error jsonb,
        created_at timestamptz NOT NULL,
        started_at timestamptz,
        finished_at timestamptz,
        updated_at timestamptz NOT NULL
      )
    `);
    // A repeated dedupe key (a sender's event id, a tick, an Idempotency-Key) finds the first run.
    await queryRunner.query(`CREATE UNIQUE INDEX flow_runs_dedupe_key ON flow_runs (flow_id, dedupe_key)`);
    await queryRunner.query(`CREATE INDEX flow_runs_user_created_idx ON flow_runs (user_id, created_at DESC, id DESC)`);
    await queryRunner.query(`CREATE INDEX flow_runs_flow_idx ON flow_runs (flow_id)`);
    // The reconciler's look for runs that may have lost their step job.
    await queryRunner.query(
      `CREATE INDEX flow_runs_unfinished_idx ON flow_runs (status, updated_at)
        WHERE status IN ('queued', 'running', 'waiting')`,
    );
    await queryRunner.query(`
      CREATE TABLE flow_steps (
        run_id uuid NOT NULL,
        step_id text NOT NULL,
        kind text NOT NULL,
        status text NOT NULL,
        attempts int NOT NULL,
        output jsonb,
        response jsonb,
        error jsonb,
        state jsonb,
        task_id uuid,
        wake_at timestamptz,
        started_at timestamptz,
        finished_at timestamptz,
        PRIMARY KEY (run_id, step_id)
      )
    `);
    // A task started by a run's step knows that run, so its end wakes the step at once.
    await queryRunner.query(`ALTER TABLE tasks ADD COLUMN flow_run_id uuid`);
    await queryRunner.query(`ALTER TABLE tasks ADD COLUMN flow_step_id text`);
    await queryRunner.query(`CREATE INDEX tasks_flow_run_idx ON tasks (flow_run_id) WHERE flow_run_id IS NOT NULL`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX tasks_flow_run_idx`);
    await queryRunner.query(`ALTER TABLE tasks DROP COLUMN flow_step_id`);
    await queryRunner.query(`ALTER TABLE tasks DROP COLUMN flow_run_id`);
    await queryRunner.query(`DROP TABLE flow_steps`);
    await queryRunner.query(`DROP TABLE flow_runs`);
    await queryRunner.query(`DROP TABLE flow_versions`);
    await queryRunner.query(`DROP TABLE flows`);
  }
}
