import { Column, Entity, PrimaryColumn } from 'typeorm';

// The Postgres backend's cache state (see PostgresCacheState), read and written by hand-written SQL only. The tables
// are UNLOGGED, which entities cannot say: that lives in their migration. Epoch-millisecond columns are bigint, which
// `pg` returns as strings.

/** The task calling the provider for every identical task in flight, until it is done or `expires_at`. */
@Entity('cache_first_calls')
export class CacheFirstCallEntity {
  @PrimaryColumn('text')
  key: string;

  @Column('text', { name: 'task_id' })
  taskId: string;

  @Column('bigint', { name: 'expires_at' })
  expiresAt: string;
}

/** A task waiting for the result of the first call of its key; its delayed job is run as soon as that is done. */
@Entity('cache_first_call_waiters')
export class CacheFirstCallWaiterEntity {
  @PrimaryColumn('text')
  key: string;

  @PrimaryColumn('text', { name: 'task_id' })
  taskId: string;

  @Column('bigint', { name: 'expires_at' })
  expiresAt: string;
}

/** The cluster's cache statistics: `<layer>_<field>` → count. */
@Entity('cache_counters')
export class CacheCounterEntity {
  @PrimaryColumn('text')
  name: string;

  @Column('bigint', { default: 0 })
  count: string;
}
