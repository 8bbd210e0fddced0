import { MigrationInterface, QueryRunner } from 'typeorm';

export class IndexUnfinishedTasksByUser1764700000000 implements MigrationInterface {
  name = 'IndexUnfinishedTasksByUser1764700000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // QUOTA_MAX_ACTIVE_TASKS counts a user's unfinished tasks on every submit: only those rows are indexed.
    await queryRunner.query(
      `CREATE INDEX tasks_user_unfinished_idx ON tasks (user_id) WHERE status IN ('pending', 'queued', 'processing')`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX tasks_user_unfinished_idx`);
  }
}
