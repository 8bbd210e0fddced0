import { EntityMetadata, ValueTransformer } from 'typeorm';

/**
 * One table's rows to and from hand-written SQL, through its entity's metadata: no column list or row type is
 * written by hand, so a column added to the entity (and its migration) is inserted and read everywhere.
 */
export class EntityRows<E extends object> {
  private readonly columns: string;

  constructor(private readonly meta: EntityMetadata) {
    this.columns = meta.columns.map((c) => `"${c.databaseName}"`).join(', ');
  }

  /**
   * Inserts every column of the entities in the JSON array parameter `$<param>` (see `records`). Missing fields would
   * be NULL, not the column's default: the entities passed must be complete (built by their `create`).
   */
  insertSql(param = 1): string {
    return `INSERT INTO ${this.meta.tableName} (${this.columns})
      SELECT ${this.columns} FROM jsonb_populate_recordset(NULL::${this.meta.tableName}, $${param}::jsonb)`;
  }

  /** The parameter of `insertSql`: the entities as JSON objects keyed by column name. */
  records(entities: readonly E[]): string {
    return JSON.stringify(
      entities.map((entity) => {
        const record: Record<string, unknown> = {};
        for (const column of this.meta.columns) {
          let value = column.getEntityValue(entity);
          if (column.transformer) value = (column.transformer as ValueTransformer).to(value);
          record[column.databaseName] = value ?? null;
        }
        return record;
      }),
    );
  }

  /** An entity from a row of hand-written SQL (`… RETURNING *`, `SELECT t.*`); columns not selectable are left out. */
  fromRow(row: Record<string, unknown>): E {
    const entity = this.meta.create() as E;
    for (const column of this.meta.columns) {
      if (!column.isSelect) continue;
      let value = row[column.databaseName];
      if (column.transformer) value = (column.transformer as ValueTransformer).from(value);
      column.setEntityValue(entity, value);
    }
    return entity;
  }
}
