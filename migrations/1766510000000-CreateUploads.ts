import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateUploads1766510000000 implements MigrationInterface {
  name = 'CreateUploads1766510000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // Files users sent, usable as upload:<id> until expires_at; the sweep finds the expired ones by the index.
    await queryRunner.query(`
      CREATE TABLE uploads (
        id uuid PRIMARY KEY,
        owner text NOT NULL,
        key text NOT NULL,
        content_type text NOT NULL,
        size bigint NOT NULL,
        sha256 text NOT NULL,
        filename text,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
      )
    `);
    await queryRunner.query(`CREATE INDEX uploads_expires_at_idx ON uploads (expires_at)`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE uploads`);
  }
}
