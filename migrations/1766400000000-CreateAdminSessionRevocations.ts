import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateAdminSessionRevocations1766400000000 implements MigrationInterface {
  name = 'CreateAdminSessionRevocations1766400000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // Logged, unlike the other state of the Postgres backend: a sign-out must outlive a crash of Postgres.
    await queryRunner.query(
      `CREATE TABLE admin_session_revocations (
        session_id text PRIMARY KEY,
        expires_at timestamptz NOT NULL
      )`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE admin_session_revocations`);
  }
}
