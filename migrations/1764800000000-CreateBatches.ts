import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateBatches1764800000000 implements MigrationInterface {
  name = 'CreateBatches1764800000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // A batch is written with its tasks in one transaction; completed_at is set once, by the statement that also
    // writes its batch.completed delivery, so concurrent last tasks make one event.
    await queryRunner.query(`
      CREATE TABLE batches (
        id uuid PRIMARY KEY,
        user_id text NOT NULL,
        webhook_url text,
        webhook_secret text,
        metadata jsonb,
        total integer NOT NULL,
        created_at timestamptz NOT NULL,
        completed_at timestamptz
      )
    `);
    await queryRunner.query(`ALTER TABLE tasks ADD COLUMN batch_id uuid REFERENCES batches (id)`);
    await queryRunner.query(`CREATE INDEX tasks_batch_idx ON tasks (batch_id) WHERE batch_id IS NOT NULL`);
    // A delivery without a task may belong to a batch: the sender signs it with the batch's secret.
    await queryRunner.query(
      `ALTER TABLE webhook_deliveries ADD COLUMN batch_id uuid REFERENCES batches (id) ON DELETE CASCADE`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX webhook_deliveries_batch_idx ON webhook_deliveries (batch_id) WHERE batch_id IS NOT NULL`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE webhook_deliveries DROP COLUMN batch_id`);
    await queryRunner.query(`ALTER TABLE tasks DROP COLUMN batch_id`);
    await queryRunner.query(`DROP TABLE batches`);
  }
}
