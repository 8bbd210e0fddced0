interface Waiter<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

interface Lane<T, R> {
  /** Writes of this lane in flight. */
  flushing: number;
  waiting: Waiter<T, R>[];
}

export interface GroupCommitOptions {
  /** The most items one write takes. */
  maxBatch?: number;
  /**
   * When a batch's write fails, write each of its items alone, so that one item's own failure (a row the table
   * refuses) rejects that item only. Without it, the failure rejects the whole batch.
   */
  isolateFailures?: boolean;
  /**
   * How many writes of one lane may be in flight at once. With 1, a lane writes strictly one batch after another;
   * with more, an item that finds a write in flight still goes at once while fewer than this many are, so a lane
   * keeps as many connections busy as a plain write per item would, until they are all taken.
   */
  parallel?: number;
}

/**
 * Group commit: items of one kind (the lane key) are written together. When a lane has room (fewer writes in flight
 * than `parallel`) an item goes at once, alone, so nothing waits at low load; items that arrive while every write is
 * in flight are sent as one batch when one returns. Under load, N concurrent writers cost one round trip per batch
 * instead of N.
 * `flush` answers one result per item, in the items' order; its failure rejects every item of that batch (or, with
 * `isolateFailures`, each item is written alone and only those whose own write fails are rejected).
 */
export class GroupCommit<T, R> {
  private readonly lanes = new Map<string, Lane<T, R>>();
  private readonly maxBatch: number;
  private readonly parallel: number;
  private readonly isolateFailures: boolean;

  constructor(
    private readonly flush: (key: string, items: T[]) => Promise<R[]>,
    options: GroupCommitOptions | number = {},
  ) {
    const opts = typeof options === 'number' ? { maxBatch: options } : options;
    this.maxBatch = opts.maxBatch ?? 256;
    this.parallel = Math.max(1, opts.parallel ?? 1);
    this.isolateFailures = opts.isolateFailures ?? false;
  }

  submit(key: string, item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let lane = this.lanes.get(key);
      if (!lane) {
        lane = { flushing: 0, waiting: [] };
        this.lanes.set(key, lane);
      }
      lane.waiting.push({ item, resolve, reject });
      if (lane.flushing < this.parallel) void this.drain(key, lane);
    });
  }

  private async drain(key: string, lane: Lane<T, R>): Promise<void> {
    lane.flushing++;
    while (lane.waiting.length) {
      const batch = lane.waiting.splice(0, this.maxBatch);
      try {
        const results = await this.flush(
          key,
          batch.map((w) => w.item),
        );
        batch.forEach((w, i) => w.resolve(results[i]));
      } catch (err) {
        if (!this.isolateFailures || batch.length === 1) {
          for (const w of batch) w.reject(err);
        } else {
          await Promise.all(
            batch.map((w) =>
              this.flush(key, [w.item]).then(
                ([result]) => w.resolve(result),
                (alone: unknown) => w.reject(alone),
              ),
            ),
          );
        }
      }
    }
    lane.flushing--;
    if (!lane.flushing) this.lanes.delete(key);
  }
}
