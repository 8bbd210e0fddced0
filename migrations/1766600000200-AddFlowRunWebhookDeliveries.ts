import { MigrationInterface, QueryRunner } from 'typeorm';

export class AddFlowRunWebhookDeliveries1766600000200 implements MigrationInterface {
  name = 'AddFlowRunWebhookDeliveries1766600000200';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // Deliveries of a flow run (its events, its notify steps) have neither task nor batch: the run's id finds them,
    // and one that brings its own secret (a notify step's) keeps it in the row, as tasks keep theirs.
    await queryRunner.query(`ALTER TABLE webhook_deliveries ADD COLUMN flow_run_id uuid`);
    await queryRunner.query(`ALTER TABLE webhook_deliveries ADD COLUMN secret text`);
    await queryRunner.query(
      `CREATE INDEX webhook_deliveries_flow_run_idx ON webhook_deliveries (flow_run_id, created_at)
        WHERE flow_run_id IS NOT NULL`,
    );
    // A run's deliveries to one URL go out in sequence order, as a task's do (webhook_deliveries_order_idx).
    await queryRunner.query(
      `CREATE INDEX webhook_deliveries_flow_order_idx ON webhook_deliveries (flow_run_id, url, sequence)
        WHERE attempts = 0 AND flow_run_id IS NOT NULL`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX webhook_deliveries_flow_order_idx`);
    await queryRunner.query(`DROP INDEX webhook_deliveries_flow_run_idx`);
    await queryRunner.query(`ALTER TABLE webhook_deliveries DROP COLUMN secret`);
    await queryRunner.query(`ALTER TABLE webhook_deliveries DROP COLUMN flow_run_id`);
  }
}
