import { MigrationInterface, QueryRunner } from 'typeorm';

export class AddTaskParts1765000000000 implements MigrationInterface {
  name = 'AddTaskParts1765000000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // A large img2vid is split into parts: each part is a task of its own (run, retried and cancelled alone) that
    // points at the task it belongs to. The unique index makes the split idempotent: a worker that dies halfway
    // through it and runs it again writes the missing parts only.
    await queryRunner.query(`ALTER TABLE tasks ADD COLUMN parent_id uuid REFERENCES tasks (id) ON DELETE CASCADE`);
    await queryRunner.query(`ALTER TABLE tasks ADD COLUMN part_index integer`);
    // On the split task: how many parts it was split into (null: it runs whole).
    await queryRunner.query(`ALTER TABLE tasks ADD COLUMN parts integer`);
    await queryRunner.query(
      `CREATE UNIQUE INDEX tasks_parent_part_idx ON tasks (parent_id, part_index) WHERE parent_id IS NOT NULL`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX tasks_parent_part_idx`);
    await queryRunner.query(`ALTER TABLE tasks DROP COLUMN parts`);
    await queryRunner.query(`ALTER TABLE tasks DROP COLUMN part_index`);
    await queryRunner.query(`ALTER TABLE tasks DROP COLUMN parent_id`);
  }
}
