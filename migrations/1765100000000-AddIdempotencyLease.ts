import { MigrationInterface, QueryRunner } from 'typeorm';

export class AddIdempotencyLease1765100000000 implements MigrationInterface {
  name = 'AddIdempotencyLease1765100000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // An in-flight key is held under a lease its request renews while it runs: a key whose request died (a crashed
    // process, a lost answer) is free again once the lease lapses, instead of answering 409 for 24 hours. The token
    // tells one claim of a key from the next, so a late request cannot record its answer over a newer claim's.
    // Keys claimed before this column existed get no lease: they lapse an hour after their claim.
    await queryRunner.query(
      `ALTER TABLE idempotency_keys ADD COLUMN lease_token uuid, ADD COLUMN lease_expires_at timestamptz`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE idempotency_keys DROP COLUMN lease_expires_at, DROP COLUMN lease_token`);
  }
}
