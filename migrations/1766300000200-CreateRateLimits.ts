import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateRateLimits1766300000200 implements MigrationInterface {
  name = 'CreateRateLimits1766300000200';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // The request counters of the rate limits on the Postgres backend (QUEUE_BACKEND=postgres), in the shape
    // rate-limiter-flexible's Postgres store reads and writes: `<counter>:<user or address>`, the points used in the
    // window, and when the window ends (epoch ms). UNLOGGED: a minute's counts are not worth a crash recovery.
    await queryRunner.query(`
      CREATE UNLOGGED TABLE rate_limits (
        key varchar(255) PRIMARY KEY,
        points integer NOT NULL DEFAULT 0,
        expire bigint
      )
    `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE rate_limits`);
  }
}
