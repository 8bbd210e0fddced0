import { MigrationInterface, QueryRunner } from 'typeorm';

export class AddTaskRunAt1766600000100 implements MigrationInterface {
  name = 'AddTaskRunAt1766600000100';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // When a task asked to start later (`run_at`): its job is delayed until then, and so is a job the reconciler adds.
    await queryRunner.query(`ALTER TABLE tasks ADD COLUMN run_at timestamptz`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE tasks DROP COLUMN run_at`);
  }
}
