const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
]);

const CONNECTION_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Connection is closed',
  'connect ECONNREFUSED',
  "Stream isn't writeable",
  'Client has encountered a connection error',
];

/** True when an error means "the database or Redis cannot be reached", as opposed to a bad query. */
export function isConnectionError(error: unknown): boolean {
  // Duck-typed: errors from Node's sockets may come from another realm, where `instanceof Error` is false.
  if (typeof error !== 'object' || error === null) return false;
  const { code, driverError, errors, message } = error as {
    code?: unknown;
    driverError?: unknown;
    errors?: unknown;
    message?: unknown;
  };
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
  if (driverError && driverError !== error && isConnectionError(driverError)) return true;
  if (Array.isArray(errors) && errors.some(isConnectionError)) return true;
  return typeof message === 'string' && CONNECTION_MESSAGES.some((m) => message.includes(m));
}
