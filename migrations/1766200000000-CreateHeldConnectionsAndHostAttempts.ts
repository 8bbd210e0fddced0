import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateHeldConnectionsAndHostAttempts1766200000000 implements MigrationInterface {
  name = 'CreateHeldConnectionsAndHostAttempts1766200000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // Counts the Postgres backend keeps in place of Redis keys. UNLOGGED: not written to the WAL (they change on every
    // stream and every delivery attempt), and emptied after a crash of Postgres, which frees every held place and
    // forgets past seconds, as their leases and windows would.
    await queryRunner.query(
      `CREATE UNLOGGED TABLE held_connections (
        lease_id uuid PRIMARY KEY,
        user_id text NOT NULL,
        expires_at timestamptz NOT NULL
      )`,
    );
    await queryRunner.query(`CREATE INDEX held_connections_user_idx ON held_connections (user_id)`);
    await queryRunner.query(
      `CREATE UNLOGGED TABLE webhook_host_attempts (
        host text NOT NULL,
        window_start bigint NOT NULL,
        attempts int NOT NULL,
        PRIMARY KEY (host, window_start)
      )`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE webhook_host_attempts`);
    await queryRunner.query(`DROP TABLE held_connections`);
  }
}
