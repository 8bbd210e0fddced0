import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import { DataSource } from 'typeorm';

const names = new Map<string, string>();

/**
 * Runs a statement as a named prepared statement on the data source's pool: Postgres plans it once per connection
 * instead of on every call. For the hot statements (task transitions, webhook claims), whose CTEs cost more to plan
 * than to run. The name is a hash of the text, so each distinct statement is prepared once per connection; keep the
 * texts few (built from a bounded set of shapes, never with values inlined).
 */
export async function preparedQuery<R = Record<string, unknown>>(
  dataSource: DataSource,
  text: string,
  values: unknown[],
): Promise<R[]> {
  let name = names.get(text);
  if (!name) {
    name = `p${createHash('sha1').update(text).digest('base64url').slice(0, 20)}`;
    names.set(text, name);
  }
  const pool = (dataSource.driver as unknown as { master: Pool }).master;
  const result = await pool.query({ name, text, values });
  return result.rows as R[];
}
