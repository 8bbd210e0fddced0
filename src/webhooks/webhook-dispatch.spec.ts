import { AppConfig } from '../config/app-config';
import type { JobNext, WebhookAttempts } from './webhook-attempts';
import { WebhookDispatch } from './webhook-dispatch';
import type { WebhookQueue } from './webhook-queue.service';

const D1 = '11111111-1111-4111-8111-111111111111';
const D2 = '22222222-2222-4222-8222-222222222222';
const D3 = '33333333-3333-4333-8333-333333333333';
const D4 = '44444444-4444-4444-8444-444444444444';

/** `answers` are what sendFirstAttempts answers, call after call; each call waits for `gate` when one is set. */
function setup(env: Record<string, string> = {}, answers: (JobNext | Error)[] = [{ kind: 'done' }]) {
  let gate: Promise<void> | undefined;
  const calls: [string, number][] = [];
  const attempts = {
    // This process records the delivery ahead at once.
    waitBehind: jest.fn(async () => undefined),
    sendFirstAttempts: jest.fn(async (id: string, looks: number) => {
      calls.push([id, looks]);
      await gate;
      const answer = answers.length > 1 ? answers.shift()! : answers[0];
      if (answer instanceof Error) throw answer;
      return answer;
    }),
  };
  const queue = { dispatch: jest.fn(), addLater: jest.fn(async () => undefined) };
  const dispatch = new WebhookDispatch(
    AppConfig.fromEnv(env),
    attempts as unknown as WebhookAttempts,
    queue as unknown as WebhookQueue,
  );
  const hold = () => {
    let open!: () => void;
    gate = new Promise<void>((resolve) => (open = resolve));
    return open;
  };
  return { dispatch, attempts, queue, calls, hold };
}

/** Until the sends under way have ended (not through shutdown, which changes what a send does next). */
async function settled(d: WebhookDispatch): Promise<void> {
  while (d.inFlight) await new Promise((resolve) => setTimeout(resolve, 1));
}

describe('WebhookDispatch', () => {
  it('sends a committed delivery at once, through the first attempts, and adds no job', async () => {
    const t = setup();
    t.dispatch.dispatch(D1);
    await settled(t.dispatch);
    expect(t.calls).toEqual([[D1, 0]]);
    expect(t.queue.dispatch).not.toHaveBeenCalled();
    expect(t.queue.addLater).not.toHaveBeenCalled();
  });

  it('hands every delivery to the queue with WEBHOOK_SEND_AT_COMMIT=false', async () => {
    const t = setup({ WEBHOOK_SEND_AT_COMMIT: 'false' });
    t.dispatch.dispatch(D1);
    await settled(t.dispatch);
    expect(t.attempts.sendFirstAttempts).not.toHaveBeenCalled();
    expect(t.queue.dispatch).toHaveBeenCalledWith(D1);
  });

  it('sends at most WEBHOOK_CONCURRENCY at once; the rest go to the queue, and room comes back as sends end', async () => {
    const t = setup({ WEBHOOK_CONCURRENCY: '2', DATABASE_POOL_SIZE: '10' });
    const open = t.hold(); // a slow receiver: the sends under way do not end
    t.dispatch.dispatch(D1);
    t.dispatch.dispatch(D2);
    t.dispatch.dispatch(D3);
    expect(t.dispatch.inFlight).toBe(2);
    expect(t.queue.dispatch.mock.calls).toEqual([[D3]]);
    open();
    await settled(t.dispatch);
    expect(t.dispatch.inFlight).toBe(0);
    expect(t.calls.map(([id]) => id)).toEqual([D1, D2]);
  });

  it('sends WEBHOOK_CONCURRENCY lines at once whatever the size of the database pool (their statements are shared)', async () => {
    const t = setup({ WEBHOOK_CONCURRENCY: '50', DATABASE_POOL_SIZE: '2' });
    const open = t.hold();
    for (const id of [D1, D2, D3, D4]) t.dispatch.dispatch(id);
    expect(t.dispatch.inFlight).toBe(4);
    expect(t.queue.dispatch).not.toHaveBeenCalled();
    open();
    await settled(t.dispatch);
  });

  it('looks again shortly at a delivery behind one another sender holds, and sends it when the line is free', async () => {
    const wait = (): JobNext => ({ kind: 'wait', until: Date.now() + 20 });
    const t = setup({}, [wait(), wait(), { kind: 'done' }]);
    t.dispatch.dispatch(D1);
    await settled(t.dispatch);
    expect(t.calls).toEqual([
      [D1, 0],
      [D1, 1],
      [D1, 2],
    ]);
    expect(t.queue.addLater).not.toHaveBeenCalled();
    expect(t.queue.dispatch).not.toHaveBeenCalled();
  });

  it('looks again as soon as this process has recorded the delivery it waited behind', async () => {
    const t = setup({}, [{ kind: 'wait', until: Date.now() + 150, behind: D2 }, { kind: 'done' }]);
    const started = Date.now();
    t.dispatch.dispatch(D1);
    await settled(t.dispatch);
    expect(t.calls).toEqual([
      [D1, 0],
      [D1, 1],
    ]);
    expect(t.attempts.waitBehind).toHaveBeenCalledWith(D2, expect.any(Number));
    expect(Date.now() - started).toBeLessThan(150);
  });

  it('gives a delivery whose line stays held a job that looks again, after four looks', async () => {
    const t = setup({}, [{ kind: 'wait', until: Date.now() + 20 }]);
    t.dispatch.dispatch(D1);
    await settled(t.dispatch);
    expect(t.calls).toEqual([0, 1, 2, 3].map((looks) => [D1, looks]));
    const [[id, delayMs]] = t.queue.addLater.mock.calls as unknown as [string, number][];
    expect([id, delayMs <= 20]).toEqual([D1, true]);
  });

  it("gives a delivery held by its host's rate a job due when the rate has room", async () => {
    const until = Date.now() + 700;
    const t = setup({}, [{ kind: 'wait', until }]);
    t.dispatch.dispatch(D1);
    await settled(t.dispatch);
    expect(t.calls).toHaveLength(1);
    const [[id, delayMs]] = t.queue.addLater.mock.calls as unknown as [string, number][];
    expect(id).toBe(D1);
    expect(delayMs).toBeGreaterThan(600);
    expect(delayMs).toBeLessThanOrEqual(700);
  });

  it('hands a delivery whose attempt could not be made (Postgres away) to its job at once', async () => {
    const t = setup({}, [new Error('connection terminated')]);
    t.dispatch.dispatch(D1);
    await settled(t.dispatch);
    expect(t.queue.dispatch).toHaveBeenCalledWith(D1);
  });

  it('waits at shutdown for the sends under way, and queues what commits meanwhile', async () => {
    const t = setup();
    const open = t.hold();
    t.dispatch.dispatch(D1);
    const closed = t.dispatch.beforeApplicationShutdown();
    t.dispatch.dispatch(D2);
    expect(t.queue.dispatch.mock.calls).toEqual([[D2]]);
    let done = false;
    void closed.then(() => (done = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(false);
    open();
    await closed;
    expect(t.calls).toEqual([[D1, 0]]);
  });
});
