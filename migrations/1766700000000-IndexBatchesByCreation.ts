import { MigrationInterface, QueryRunner } from 'typeorm';

export class IndexBatchesByCreation1766700000000 implements MigrationInterface {
  name = 'IndexBatchesByCreation1766700000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // GET /batch lists a user's batches newest first, a page at a time (and scope=all everyone's): without these a
    // page would sort the whole table.
    await queryRunner.query(`CREATE INDEX batches_user_created_idx ON batches (user_id, created_at DESC, id DESC)`);
    await queryRunner.query(`CREATE INDEX batches_created_idx ON batches (created_at DESC, id DESC)`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX batches_created_idx`);
    await queryRunner.query(`DROP INDEX batches_user_created_idx`);
  }
}
