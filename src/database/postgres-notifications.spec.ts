import type { AppConfig } from '../config/app-config';
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
