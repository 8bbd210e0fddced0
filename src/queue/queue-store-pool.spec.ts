import { ConnectionClosedError } from 'bullmq';
import { createServer, Server } from 'node:net';
import { createQueueStorePool, isConnectionFailure } from './queue-store-pool';

describe('the queue store pool', () => {
  let server: Server;
  let port: number;

  beforeAll(async () => {
    // A server that accepts and drops every connection: Postgres going away in the middle of a handshake.
    server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it('fails a query on a lost connection as BullMQ ConnectionClosedError, so its workers wait before asking again', async () => {
    const pool = createQueueStorePool({ host: '127.0.0.1', port, user: 'postgres', connectionTimeoutMillis: 2000 });
    pool.on('error', () => undefined);
    try {
      await expect(pool.query('SELECT 1')).rejects.toBeInstanceOf(ConnectionClosedError);
      await expect(pool.connect()).rejects.toBeInstanceOf(ConnectionClosedError);
    } finally {
      await pool.end();
    }
  });

  it('leaves the errors of a statement as they are (a bad statement is not an outage)', async () => {
    const pool = createQueueStorePool({
      connectionString: process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    });
    try {
      const err = await pool.query('SELECT * FROM no_such_table_here').catch((e: unknown) => e);
      expect(err).not.toBeInstanceOf(ConnectionClosedError);
      expect((err as { code?: string }).code).toBe('42P01');
      const client = await pool.connect();
      try {
        await expect(client.query('SELEC 1')).rejects.toMatchObject({ code: '42601' });
      } finally {
        client.release();
      }
    } finally {
      await pool.end();
    }
  });

  it('tells connection failures from other errors', () => {
    expect(isConnectionFailure(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isConnectionFailure(Object.assign(new Error('terminating connection'), { code: '57P01' }))).toBe(true);
    expect(isConnectionFailure(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectionFailure(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBe(false);
  });
});
