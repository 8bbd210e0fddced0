import { MigrationInterface, QueryRunner } from 'typeorm';

export class IndexTaskStatisticsByUser1766900000000 implements MigrationInterface {
  name = 'IndexTaskStatisticsByUser1766900000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // GET /statistics aggregates every task of one user. Found through tasks_user_created_idx, each of its rows is a
    // heap page of its own once the table holds other users' history, so the same user's statistics got slower as the
    // table grew. This index holds every column those aggregates read: an index-only scan of the user's entries,
    // whose cost depends on the user's tasks, not on the table's. (Key columns, not INCLUDE: the entity can declare
    // them, and GROUP BY status reads them in order.)
    await queryRunner.query(
      `CREATE INDEX tasks_user_statistics_idx ON tasks
        (user_id, status, type, priority, provider, parent_id, parts, started_at, completed_at, cost_amount)`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX tasks_user_statistics_idx`);
  }
}
