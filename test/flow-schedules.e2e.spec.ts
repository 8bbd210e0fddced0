import { randomUUID } from 'node:crypto';
import { FlowSchedules } from '../src/flows/flow-ports';
import { FlowScheduleKeeper } from '../src/flows/triggers/flow-schedule-keeper';
import { flowSchedulerId } from '../src/flows/triggers/flow-schedules.service';
import { QueueName } from '../src/queue/queue.constants';
import { QueueGateway } from '../src/queue/queue.gateway';
import { createTestDatabase, dropTestDatabase } from './support/databases';
import { flowTriggersWithDoubles, InMemoryFlowRuns } from './support/flow-doubles';
import { deleteRedisKeys, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';

describe('scheduled flows (BullMQ job schedulers on the flows queue)', () => {
  const runs = new InMemoryFlowRuns();
  const redisPrefix = `fsched${process.pid}`;
  let database: { name: string; url: string };
  let one: TestApp;
  let two: TestApp;

  beforeAll(async () => {
    database = await createTestDatabase();
    // Two processes of one deployment: same database, same queues, one runs seam between them (as one table would be).
    one = await TestApp.start({ database, redisPrefix, modules: [flowTriggersWithDoubles(runs)], listen: false });
    two = await TestApp.start({ database, redisPrefix, modules: [flowTriggersWithDoubles(runs)], listen: false });
  });
  afterAll(async () => {
    await two?.close();
    await one?.close();
    await dropTestDatabase(database.name);
    await deleteRedisKeys(redisPrefix);
  });

  const schedulers = async (app: TestApp) =>
    (await app.app.get(QueueGateway).queue(QueueName.Flows).getJobSchedulers(0, -1)).map((s) => s.key);

  it('ticks every second across two processes for 5 s: one run per tick, never two', async () => {
    const flowId = randomUUID();
    runs.flows.add(flowId);
    const trigger = { type: 'schedule' as const, every: '1s' };
    // Both processes assert the same scheduler, as the definitions and the keeper of each would.
    await one.app.get(FlowSchedules).sync(flowId, trigger);
    await two.app.get(FlowSchedules).sync(flowId, trigger);
    expect(await schedulers(one)).toEqual([flowSchedulerId(flowId)]);

    await waitUntil('5 ticks', () => runs.runsOf(flowId).length, { timeoutMs: 10_000, until: (n) => n >= 5 });
    await one.app.get(FlowSchedules).remove(flowId);
    expect(await schedulers(two)).toEqual([]);

    const made = runs.runsOf(flowId);
    const ticks = made.map((r) => Number(r.dedupeKey?.replace(/^tick:/, '')));
    // One run per tick, each with its tick's time, one second after the last.
    expect(new Set(ticks).size).toBe(ticks.length);
    for (const [i, run] of made.entries()) {
      expect(run).toMatchObject({ source: 'schedule', dedupeKey: `tick:${ticks[i]}` });
      expect(run.trigger).toEqual({ scheduled_at: new Date(ticks[i]).toISOString() });
    }
    const sorted = [...ticks].sort((a, b) => a - b);
    expect(sorted.slice(1).map((t, i) => t - sorted[i])).toEqual(sorted.slice(1).map(() => 1000));
    // Nor did a tick reach the runs twice (a second job of one tick would show here before its dedupe).
    const calls = runs.calls.filter((c) => c.flowId === flowId).map((c) => c.dedupeKey);
    expect(calls.length).toBe(new Set(calls).size);

    // Removed: no more ticks.
    const after = runs.runsOf(flowId).length;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(runs.runsOf(flowId).length).toBeLessThanOrEqual(after + 1); // a tick already taken may still land
  });

  it('changes a scheduler when the trigger changes, and removes it for other triggers', async () => {
    const flowId = randomUUID();
    const schedules = one.app.get(FlowSchedules);
    await schedules.sync(flowId, { type: 'schedule', cron: '0 9 * * *', timezone: 'Europe/Paris' });
    let [scheduler] = await one.app.get(QueueGateway).queue(QueueName.Flows).getJobSchedulers(0, -1);
    expect(scheduler).toMatchObject({ key: flowSchedulerId(flowId), pattern: '0 9 * * *', tz: 'Europe/Paris' });
    await schedules.sync(flowId, { type: 'schedule', every: '15m' });
    [scheduler] = await one.app.get(QueueGateway).queue(QueueName.Flows).getJobSchedulers(0, -1);
    expect(scheduler).toMatchObject({ key: flowSchedulerId(flowId), every: 900_000 });
    await schedules.sync(flowId, { type: 'webhook' });
    expect(await schedulers(one)).toEqual([]);
  });

  it('re-asserts the schedulers of scheduled flows from the flows table, and removes strays', async () => {
    await one.dataSource.query(
      `CREATE TABLE IF NOT EXISTS flows (id uuid PRIMARY KEY, trigger jsonb NOT NULL, deleted_at timestamptz)`,
    );
    const [kept, deleted, hooked] = [randomUUID(), randomUUID(), randomUUID()];
    await one.dataSource.query(
      `INSERT INTO flows (id, trigger, deleted_at) VALUES
         ($1, '{"type":"schedule","every":"1h"}', NULL),
         ($2, '{"type":"schedule","every":"1h"}', now()),
         ($3, '{"type":"webhook"}', NULL)`,
      [kept, deleted, hooked],
    );
    // A scheduler left by a deleted flow (its removal lost); and none yet for the scheduled one (a flushed Redis).
    await one.app.get(FlowSchedules).sync(deleted, { type: 'schedule', every: '1h' });
    const report = await one.app.get(FlowScheduleKeeper).reassert();
    expect(report).toEqual({ asserted: 1, removed: 1 });
    expect(await schedulers(one)).toEqual([flowSchedulerId(kept)]);
    await one.app.get(FlowSchedules).remove(kept);
  });
});
