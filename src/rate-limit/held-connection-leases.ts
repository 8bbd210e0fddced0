/**
 * How long a place counts without renewal. Every process renews its places every third of it, so the places of a
 * process that died without a word are free again within this long.
 */
export const HELD_LEASE_MS = 60_000;

/**
 * The cluster-wide count of each user's held connections, as leases that lapse unless renewed: Redis (a sorted set per
 * user) or Postgres (a row per lease), as QUEUE_BACKEND says.
 */
export abstract class HeldConnectionLeases {
  /**
   * Takes the lease `lease` for `userId` if the user holds fewer than `limit` unexpired ones: -1 when taken, else how
   * many the user holds. Rejects when the store cannot be reached.
   */
  abstract take(userId: string, lease: string, limit: number): Promise<number>;
  /** Gives a lease back; a lease not given back lapses by itself. */
  abstract release(userId: string, lease: string): Promise<void>;
  /** Pushes back the expiry of these leases (lease id → user id), putting back any the store lost meanwhile. */
  abstract renew(leases: ReadonlyMap<string, string>): Promise<void>;
}
