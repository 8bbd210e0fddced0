import { MigrationInterface, QueryRunner } from 'typeorm';

export class AddApiKeyScopes1765100000000 implements MigrationInterface {
  name = 'AddApiKeyScopes1765100000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // What a key may do: `tasks` (act as its owner on tasks, batches and deliveries; every key made before scopes
    // existed could), `queue:read`, `queue:write`. The values are stored: never rename one.
    await queryRunner.query(`ALTER TABLE api_keys ADD COLUMN scopes text[] NOT NULL DEFAULT '{tasks}'`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE api_keys DROP COLUMN scopes`);
  }
}
