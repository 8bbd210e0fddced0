import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AppConfig } from '../../src/config/app-config';
import { createDataSource } from '../../src/database/data-source';
import { SqlClient } from '../../src/database/sql-client';
import { createTestDatabase, dropTestDatabase } from './databases';

/** A node of `EXPLAIN (FORMAT JSON)`. */
export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

/** A plan's nodes, the root first. */
export function planNodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(planNodes)];
}

/** The plans of a statement: as Postgres plans it for these values, and as the generic plan of a prepared one. */
export async function plansOf(client: Client, text: string, values: readonly unknown[]): Promise<PlanNode[]> {
  const plans: PlanNode[] = [];
  try {
    for (const mode of ['force_custom_plan', 'force_generic_plan']) {
      await client.query(`SET plan_cache_mode = ${mode}`);
      const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
        `EXPLAIN (FORMAT JSON) ${text}`,
        values as unknown[],
      );
      plans.push(rows[0]['QUERY PLAN'][0].Plan);
    }
  } finally {
    await client.query('RESET plan_cache_mode');
  }
  return plans;
}

/**
 * A database of its own for a repository's statements: migrated, with the platform's `SqlClient` and TypeORM data
 * source on it, and a plain client to fill it and EXPLAIN what the repository sends.
 */
export interface RepositoryDatabase {
  config: AppConfig;
  dataSource: DataSource;
  sql: SqlClient;
  pg: Client;
  close(): Promise<void>;
}

export async function repositoryDatabase(): Promise<RepositoryDatabase> {
  const database = await createTestDatabase();
  const config = AppConfig.fromEnv({ DATABASE_URL: database.url });
  const dataSource = await createDataSource(database.url, 2).initialize();
  const sql = new SqlClient(config, dataSource);
  const pg = new Client({ connectionString: database.url });
  await pg.connect();
  return {
    config,
    dataSource,
    sql,
    pg,
    close: async () => {
      await pg.end();
      await sql.onApplicationShutdown();
      await dataSource.destroy();
      await dropTestDatabase(database.name);
    },
  };
}
