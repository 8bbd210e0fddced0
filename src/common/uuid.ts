const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids of tasks, deliveries and jobs are UUIDs: anything else cannot name one (and is answered 404 or refused). */
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}
