import type { TaskEventSubscriptions } from '../events/task-event-subscriptions';
import type { HeldConnections } from '../rate-limit/held-connections.service';
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
    // Room for every wait: the caps on held connections are another spec's subject.
    const held = { acquire: jest.fn(async () => ({ release: () => undefined })) } as unknown as HeldConnections;
    const waiter = new TaskWaiter(subscriptions, held);
    const early = await (async () => {
      confirm();
      return waiter.watch('task-1', 900);
    })();

    const late = waiter.createAndWait('alice', 900, (id: string) => Promise.resolve(id));
    waiter.beforeApplicationShutdown();
    await expect(early.finished).resolves.toBe(false);
    // The second wait subscribed after shutdown began: it ends too, instead of holding its request for 900 s.
    await expect(late).resolves.toMatchObject({ created: expect.any(String), finished: false });
  });
});
