/**
 * What the result cache shares between processes: its second layer (entries every process can read), the
 * single-flight claims of identical tasks in flight, the statistics counters, and the purge that empties every
 * process's memory layer. Kept in Redis (RedisCacheState) or in the platform's Postgres (PostgresCacheState), as
 * QUEUE_BACKEND says.
 */
export abstract class SharedCacheState {
  /** Whether entries are shared between processes here (the 'redis' layer); on Postgres they are not. */
  abstract readonly hasSharedLayer: boolean;

  /** The entry's value in the shared layer, or null (also when the layer is away). */
  abstract getEntry(key: string): Promise<string | null>;

  /** Keeps the entry in the shared layer for a day. */
  abstract setEntry(key: string, value: string): Promise<void>;

  /** How many entries the shared layer holds now. */
  abstract entryCount(): Promise<number>;

  /**
   * Single flight: true when `taskId` calls the provider (it asked first, or already holds the claim); otherwise it
   * is listed as waiting for the result. The claim and the list lapse after `ttlMs`.
   */
  abstract claimFirstCall(key: string, taskId: string, ttlMs: number): Promise<boolean>;

  /** Gives the claim up if `taskId` holds it; answers the tasks that were waiting for its result. */
  abstract releaseFirstCall(key: string, taskId: string): Promise<string[]>;

  /** Adds to the cluster's counters (`<layer>_<field>` → amount). */
  abstract addCounts(counts: [string, number][]): Promise<void>;

  abstract readCounts(): Promise<Record<string, number>>;

  /** Drops every shared entry and the counters, and tells every process (`onPurge`) to empty its memory layer. */
  abstract purge(): Promise<void>;

  /** Starts calling `onPurge` on each purge made anywhere in the cluster. */
  abstract open(onPurge: () => void): void;

  /** Stops listening (at shutdown). */
  abstract close(): Promise<void>;
}
