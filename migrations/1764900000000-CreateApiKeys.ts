import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateApiKeys1764900000000 implements MigrationInterface {
  name = 'CreateApiKeys1764900000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // Only the SHA-256 of a key is kept (keys are 256 random bits, so a fast hash is enough); `prefix` is the
    // non-secret start of the key, shown in lists so an admin can tell keys apart.
    await queryRunner.query(`
      CREATE TABLE api_keys (
        id uuid PRIMARY KEY,
        owner text NOT NULL,
        name text NOT NULL,
        key_hash text NOT NULL UNIQUE,
        prefix text NOT NULL,
        created_at timestamptz NOT NULL,
        last_used_at timestamptz,
        revoked_at timestamptz
      )
    `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE api_keys`);
  }
}
