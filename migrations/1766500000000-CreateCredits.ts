import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateCredits1766500000000 implements MigrationInterface {
  name = 'CreateCredits1766500000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // A balance changes only under its row lock, in the transaction that writes the entries explaining the change.
    await queryRunner.query(`
      CREATE TABLE credit_accounts (
        user_id text PRIMARY KEY,
        balance integer NOT NULL,
        updated_at timestamptz NOT NULL,
        CONSTRAINT credit_accounts_balance_check CHECK (balance >= 0)
      )
    `);
    // The ledger: amounts never negative, the kind says which way they move the balance; the id orders it.
    await queryRunner.query(`
      CREATE TABLE credit_entries (
        id bigserial PRIMARY KEY,
        user_id text NOT NULL,
        kind text NOT NULL,
        amount integer NOT NULL,
        task_id uuid,
        batch_id uuid,
        reason text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT credit_entries_kind_check CHECK (kind IN ('grant', 'hold', 'capture', 'release')),
        CONSTRAINT credit_entries_amount_check CHECK (amount >= 0)
      )
    `);
    await queryRunner.query(`CREATE INDEX credit_entries_user_idx ON credit_entries (user_id, id)`);
    await queryRunner.query(
      `CREATE INDEX credit_entries_task_idx ON credit_entries (task_id) WHERE task_id IS NOT NULL`,
    );
    // Append-only: an entry, once written, is what happened.
    await queryRunner.query(`
      CREATE FUNCTION credit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'credit_entries is append-only';
      END $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER credit_entries_append_only BEFORE UPDATE OR DELETE ON credit_entries
        FOR EACH ROW EXECUTE FUNCTION credit_entries_append_only()
    `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE credit_entries`);
    await queryRunner.query(`DROP FUNCTION credit_entries_append_only()`);
    await queryRunner.query(`DROP TABLE credit_accounts`);
  }
}
