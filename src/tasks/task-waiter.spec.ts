import type { TaskEventSubscriptions } from '../events/task-event-subscriptions';
import { TaskWaiter } from './task-waiter';

describe('TaskWaiter at shutdown', () => {
  it('ends every wait at once, also one whose subscription came through after shutdown began', async () => {
    let confirm!: () => void;
    const subscribed = new Promise<void>((resolve) => (confirm = resolve));
    const subscriptions = {
      subscribe: jest.fn(async () => {
        await subscribed;
        return () => undefined;
      }),
    } as unknown as TaskEventSubscriptions;
    const waiter = new TaskWaiter(subscriptions);
    const early = await (async () => {
      confirm();
      return waiter.watch('task-1', 900);
    })();

    const late = waiter.createAndWait(900, (id) => Promise.resolve(id));
    waiter.beforeApplicationShutdown();
    await expect(early.finished).resolves.toBe(false);
    // The second wait subscribed after shutdown began: it ends too, instead of holding its request for 900 s.
    await expect(late).resolves.toEqual({ created: expect.any(String), finished: false });
  });
});
