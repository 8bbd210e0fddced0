import { randomUUID } from 'node:crypto';
import { FlowSchedules } from '../src/flows/flow-ports';
import type { Job } from 'bullmq';
import { FlowScheduleKeeper } from '../src/flows/triggers/flow-schedule-keeper';
import { FlowTickHandler } from '../src/flows/triggers/flow-tick.handler';
import { flowSchedulerId } from '../src/flows/triggers/flow-schedules.service';
import { JobName, QueueName } from '../src/queue/queue.constants';
import { QueueGateway } from '../src/queue/queue.gateway';
import { createTestDatabase, dropTestDatabase } from './support/databases';
import { deleteRedisKeys, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';

describe('scheduled flows (BullMQ job schedulers on the flows queue)', () => {
  const redisPrefix = `fsched${process.pid}`;
  let database: { name: string; url: string };
  let one: TestApp;
  let two: TestApp;

  beforeAll(async () => {
    database = await createTestDatabase();
    // Two processes of one deployment: same database, same queues, one runs seam between them (as one table would be).
    one = await TestApp.start({ database, redisPrefix });
    two = await TestApp.start({ database, redisPrefix, listen: false });
  });
  afterAll(async () => {
    await two?.close();
    await one?.close();
    await dropTestDatabase(database.name);
    await deleteRedisKeys(redisPrefix);
  });

  const schedulers = async (app: TestApp) =>
    (await app.app.get(QueueGateway).queue(QueueName.Flows).getJobSchedulers(0, -1)).map((s) => s.key);

  /** The flow's runs as the table holds them: source, trigger and dedupe key. */
  const runsOf = (flowId: string) =>
    one.dataSource.query<{ source: string; trigger: { scheduled_at: string }; dedupe_key: string }[]>(
      `SELECT source, trigger, dedupe_key FROM flow_runs WHERE flow_id = $1 ORDER BY created_at`,
      [flowId],
    );

  const create = async (body: Record<string, unknown>): Promise<string> => {
    const res = await one.request('POST', '/api/v1/flows', { body });
    expect([res.status, res.body.message]).toEqual([201, undefined]);
    return res.body.id as string;
  };

  /** A tick of the flow's scheduler at `ms`, handed to its handler as BullMQ would hand it. */
  const handTick = (flowId: string, ms: number) =>
    one.app.get(FlowTickHandler).handle({
      name: JobName.FlowTick,
      data: { flowId },
      opts: { prevMillis: ms },
      id: 'x',
      timestamp: ms,
    } as Job);

  const QUICK = [{ id: 'check', kind: 'condition', if: 'true', then: 'end', else: 'end' }];

  it('ticks every second across two processes, one restarted meanwhile: one run per tick, none lost, none doubled', async () => {
    const flowId = await create({ name: 'every second', trigger: { type: 'schedule', every: '1s' }, steps: QUICK });
    expect(await schedulers(one)).toEqual([flowSchedulerId(flowId)]);

    await waitUntil('4 ticks', async () => (await runsOf(flowId)).length, { timeoutMs: 10_000, until: (n) => n >= 4 });
    // One of the two processes goes away and comes back; the ticks go on, from either.
    await two.close();
    two = await TestApp.start({ database, redisPrefix, listen: false });
    const before = (await runsOf(flowId)).length;
    await waitUntil('4 more ticks', async () => (await runsOf(flowId)).length, {
      timeoutMs: 10_000,
      until: (n) => n >= before + 4,
    });
    expect((await one.request('DELETE', `/api/v1/flows/${flowId}`)).status).toBe(204);
    expect(await schedulers(two)).toEqual([]);

    const made = await runsOf(flowId);
    const ticks = made.map((r) => Number(r.dedupe_key.replace(/^tick:/, '')));
    for (const [i, run] of made.entries()) {
      expect(run.source).toBe('schedule');
      expect(run.trigger).toEqual({ scheduled_at: new Date(ticks[i]).toISOString() });
    }
    // One run per tick: no two in one second (none run twice), no gap of two (none lost across the restart). A late
    // tick may move the schedule's phase (BullMQ goes on from now), so a gap can be longer than a second, not two.
    const sorted = [...ticks].sort((a, b) => a - b);
    expect(new Set(ticks).size).toBe(ticks.length);
    const gaps = sorted.slice(1).map((t, i) => t - sorted[i]);
    expect(gaps.filter((gap) => gap < 1000 || gap >= 2000)).toEqual([]);

    // Deleted: no more ticks.
    const after = (await runsOf(flowId)).length;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await runsOf(flowId)).length).toBeLessThanOrEqual(after + 1); // a tick already taken may still land
  }, 40000);

  it('makes the runs of ticks the scheduler skipped (a tick run late), up to 10, before the late one', async () => {
    // Yearly on 1 January: the scheduler's own next tick is weeks away; the ticks below are handed in by hand.
    const trigger = { type: 'schedule', cron: '0 0 1 1 *', timezone: 'UTC' };
    const flowId = await create({ name: 'new year', trigger, steps: QUICK });
    const year = (y: number) => Date.UTC(y, 0, 1);
    const tick = (ms: number) => handTick(flowId, ms);
    await tick(year(2027));
    // BullMQ went on from "now" after a late tick: the next tick it made skipped two.
    await tick(year(2030));
    // Far later (a long stop): only the 10 missed after the last run are made.
    await tick(year(2045));
    const made = (await runsOf(flowId)).map((r) =>
      new Date(Number(r.dedupe_key.replace(/^tick:/, ''))).getUTCFullYear(),
    );
    expect(made.sort()).toEqual([2027, 2028, 2029, 2030, ...Array.from({ length: 10 }, (_, i) => 2031 + i), 2045]);
    expect((await one.request('DELETE', `/api/v1/flows/${flowId}`)).status).toBe(204);
  });

  it('makes up no tick for a late one off the grid: the tick it stands for is not run twice', async () => {
    const HOUR = 3_600_000;
    const flowId = await create({ name: 'hourly', trigger: { type: 'schedule', every: '1h' }, steps: QUICK });
    const tick = (ms: number) => handTick(flowId, ms);
    // The scheduler's own first tick comes at once; the ticks below are handed in by hand, an hour on.
    await waitUntil('the first tick', async () => (await runsOf(flowId)).length, { until: (n) => n >= 1 });
    const t0 = Date.now() + HOUR;
    await tick(t0);
    // The next tick came 20 minutes late and BullMQ went on from then: it is the late 1h tick, nothing was skipped.
    await tick(t0 + HOUR + 20 * 60_000);
    // Then one was skipped: of the two grid points before this tick, the first is made up, the second is this one.
    await tick(t0 + 3 * HOUR + 30 * 60_000);
    const made = (await runsOf(flowId)).map((r) => (Number(r.dedupe_key.replace(/^tick:/, '')) - t0) / 60_000);
    expect(made.filter((at) => at >= 0).sort((a, b) => a - b)).toEqual([0, 80, 140, 210]);
    expect((await one.request('DELETE', `/api/v1/flows/${flowId}`)).status).toBe(204);
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
    const kept = await create({ name: 'kept', trigger: { type: 'schedule', every: '1h' }, steps: QUICK });
    const deleted = await create({ name: 'deleted', trigger: { type: 'schedule', every: '1h' }, steps: QUICK });
    await create({ name: 'hooked', trigger: { type: 'webhook' }, steps: QUICK });
    expect((await one.request('DELETE', `/api/v1/flows/${deleted}`)).status).toBe(204);
    // A scheduler left by a deleted flow (its removal lost); and none for the scheduled one (a flushed Redis).
    await one.app.get(FlowSchedules).sync(deleted, { type: 'schedule', every: '1h' });
    await one.app.get(QueueGateway).queue(QueueName.Flows).removeJobScheduler(flowSchedulerId(kept));
    const report = await one.app.get(FlowScheduleKeeper).reassert();
    expect(report).toEqual({ asserted: 1, removed: 1 });
    expect(await schedulers(one)).toEqual([flowSchedulerId(kept)]);
    await one.app.get(FlowSchedules).remove(kept);
  });
});
