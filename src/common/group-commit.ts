interface Waiter<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

interface Lane<T, R> {
  busy: boolean;
  waiting: Waiter<T, R>[];
}

/**
 * Group commit: items of one kind (the lane key) are written together. When a lane is idle an item goes at once,
 * alone, so nothing waits at low load; items that arrive while the lane's write is in flight are sent as one batch
 * when it returns. Under load, N concurrent writers cost one round trip per batch instead of N.
 * `flush` answers one result per item, in the items' order; its failure rejects every item of that batch.
 */
export class GroupCommit<T, R> {
  private readonly lanes = new Map<string, Lane<T, R>>();

  constructor(
    private readonly flush: (key: string, items: T[]) => Promise<R[]>,
    private readonly maxBatch = 256,
  ) {}

  submit(key: string, item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let lane = this.lanes.get(key);
      if (!lane) {
        lane = { busy: false, waiting: [] };
        this.lanes.set(key, lane);
      }
      lane.waiting.push({ item, resolve, reject });
      if (!lane.busy) void this.drain(key, lane);
    });
  }

  private async drain(key: string, lane: Lane<T, R>): Promise<void> {
    lane.busy = true;
    while (lane.waiting.length) {
      const batch = lane.waiting.splice(0, this.maxBatch);
      try {
        const results = await this.flush(
          key,
          batch.map((w) => w.item),
        );
        batch.forEach((w, i) => w.resolve(results[i]));
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    lane.busy = false;
    this.lanes.delete(key);
  }
}
