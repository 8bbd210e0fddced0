import { MigrationInterface, QueryRunner } from 'typeorm';

export class IndexTaskOutputsForRetention1766800000000 implements MigrationInterface {
  name = 'IndexTaskOutputsForRetention1766800000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // The retention sweep (OUTPUT_RETENTION_DAYS) looks for the oldest tasks whose stored files are still kept: only
    // those rows are in the index, so it stays small however many tasks have expired or stored nothing.
    await queryRunner.query(
      `CREATE INDEX tasks_kept_outputs_idx ON tasks (completed_at)
        WHERE output ? 'files' AND NOT output ? 'expired_at'`,
    );
    // Uploads past the retention, oldest first.
    await queryRunner.query(`CREATE INDEX uploads_created_idx ON uploads (created_at)`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX uploads_created_idx`);
    await queryRunner.query(`DROP INDEX tasks_kept_outputs_idx`);
  }
}
