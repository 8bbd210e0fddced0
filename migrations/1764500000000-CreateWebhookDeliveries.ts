import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateWebhookDeliveries1764500000000 implements MigrationInterface {
  name = 'CreateWebhookDeliveries1764500000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // One row per (event, URL): written by the same statement as the transition that makes the event, so an event
    // is never lost between the task's change and its delivery. The row's id is the `webhook-id` header.
    await queryRunner.query(`
      CREATE TABLE webhook_deliveries (
        id uuid PRIMARY KEY,
        task_id uuid REFERENCES tasks (id) ON DELETE CASCADE,
        user_id text NOT NULL,
        event_type text NOT NULL,
        sequence integer NOT NULL,
        url text NOT NULL,
        body text NOT NULL,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed', 'dead')),
        attempts integer NOT NULL DEFAULT 0,
        round_attempts integer NOT NULL DEFAULT 0,
        attempt_log jsonb NOT NULL DEFAULT '[]',
        next_attempt_at timestamptz,
        last_status_code integer,
        last_error text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        delivered_at timestamptz,
        lease_until timestamptz
      )
    `);
    // First attempts of one task's deliveries to one URL go out in sequence order: the line is read here.
    await queryRunner.query(
      `CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (task_id, url, sequence) WHERE attempts = 0`,
    );
    await queryRunner.query(`CREATE INDEX webhook_deliveries_task_idx ON webhook_deliveries (task_id, sequence)`);
    await queryRunner.query(
      `CREATE INDEX webhook_deliveries_user_idx ON webhook_deliveries (user_id, status, created_at DESC, id DESC)`,
    );
    await queryRunner.query(
      `CREATE INDEX webhook_deliveries_status_idx ON webhook_deliveries (status, created_at DESC, id DESC)`,
    );
    // The reconciler's scan: unfinished deliveries only.
    await queryRunner.query(
      `CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
        WHERE status IN ('pending', 'failed')`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE webhook_deliveries`);
  }
}
