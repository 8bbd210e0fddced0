import { Client } from 'pg';
import type { AppConfig } from '../config/app-config';
import { DEFAULT_TEST_PG_URL } from '../../test/support/databases';
import { PostgresNotifications } from './postgres-notifications';
import type { SqlClient } from './sql-client';

describe('PostgresNotifications sending', () => {
  it('sends notifications made together in one statement, never split between two', async () => {
    const statements: string[][] = [];
    const sql = {
      rows: async (_text: string, [channels]: [string[], string[]]) => {
        statements.push(channels);
        await new Promise((resolve) => setImmediate(resolve));
        return [];
      },
    } as unknown as SqlClient;
    const notifications = new PostgresNotifications({} as AppConfig, sql);

    const sent = [notifications.notify('first', '0')];
    // While the first statement runs, 499 more and then a group of 3 that would straddle the 500 of a statement.
    for (let i = 1; i < 500; i++) sent.push(notifications.notify(`single-${i}`, String(i)));
    const together = ['a', 'b', 'c'].map((channel) => ({ channel, payload: 'x' }));
    sent.push(notifications.notifyTogether(together));
    await Promise.all(sent);

    expect(statements.map((s) => s.length)).toEqual([1, 499, 3]);
    expect(statements[2]).toEqual(['a', 'b', 'c']);
  });
});

describe('PostgresNotifications listening', () => {
  it('runs its LISTEN and UNLISTEN statements one at a time, in the order asked, on one connection', async () => {
    // How many statements each connection has been sent and not yet answered, at most.
    const sent = new Map<Client, number>();
    let most = 0;
    const query = Client.prototype.query as (this: Client, ...args: unknown[]) => Promise<unknown>;
    function counted(this: Client, ...args: unknown[]): Promise<unknown> {
      sent.set(this, (sent.get(this) ?? 0) + 1);
      most = Math.max(most, sent.get(this)!);
      return query.apply(this, args).finally(() => sent.set(this, sent.get(this)! - 1));
    }
    const prototype = Client.prototype as { query: unknown };
    prototype.query = counted;
    const notifications = new PostgresNotifications(
      { databaseUrl: process.env.TEST_PG_URL ?? DEFAULT_TEST_PG_URL } as AppConfig,
      {} as SqlClient,
    );
    try {
      const channels = Array.from({ length: 8 }, (_, i) => `order_test_${i}`);
      await Promise.all(channels.map((channel) => notifications.listen(channel)));
      // Run in the order asked: order_test_3 is listened to again, order_test_5 no more.
      notifications.unlisten('order_test_3');
      const relistened = notifications.listen('order_test_3');
      relistened.catch(() => undefined); // awaited below, unless an expectation fails first
      notifications.unlisten('order_test_5');
      expect((await notifications.listenedChannels()).sort()).toEqual(channels.filter((c) => c !== 'order_test_5'));
      await relistened;
      // pg 8 warns, and pg 9 will refuse, a statement sent while another one runs on the same client.
      expect(most).toBe(1);
    } finally {
      prototype.query = query;
      await notifications.onApplicationShutdown();
    }
  });
});
