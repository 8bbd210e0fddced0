import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** The machine's Postgres (trust auth) and Redis; TEST_PG_URL and TEST_REDIS_URL point elsewhere. */
export const DEFAULT_TEST_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
export const DEFAULT_TEST_REDIS_URL = 'redis://127.0.0.1:6379';

/** Read when used: the global setup may set TEST_PG_URL after this module is loaded (to a server it started). */
function pgAdminUrl(): string {
  return process.env.TEST_PG_URL ?? DEFAULT_TEST_PG_URL;
}
/** Test files load after the global setup, which sets TEST_REDIS_URL when it started a Redis of its own. */
export const REDIS_URL = process.env.TEST_REDIS_URL ?? DEFAULT_TEST_REDIS_URL;
/**
 * Where the platforms under test keep their queues: TEST_QUEUE_BACKEND=postgres runs the suite with BullMQ on each
 * test file's own database (`TEST_QUEUE_BACKEND=postgres npm run test:e2e`); Redis otherwise.
 */
export const TEST_QUEUE_BACKEND: 'redis' | 'postgres' =
  process.env.TEST_QUEUE_BACKEND === 'postgres' ? 'postgres' : 'redis';
/**
 * Databases carry the id of the `jest` run that made them (its pid, set by the global setup), so several runs on one
 * machine never drop each other's databases.
 */
export function testRunId(): string {
  return (process.env.MEDIA_TEST_RUN ??= String(process.pid));
}

export function templateDb(): string {
  return `media_test_${testRunId()}_template`;
}

export function databaseUrl(name: string): string {
  const url = new URL(pgAdminUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

export async function withAdmin<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: pgAdminUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A database of its own for one test file, cloned from the migrated template (STYLE rule 18). */
export async function createTestDatabase(): Promise<{ name: string; url: string }> {
  const name = `media_test_${testRunId()}_${randomBytes(6).toString('hex')}`;
  await withAdmin((c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${templateDb()}`));
  return { name, url: databaseUrl(name) };
}

export async function dropTestDatabase(name: string): Promise<void> {
  await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}
