import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from '../../clients/typescript/src/generated/openapi';

export type Schemas = components['schemas'];
export type Task = Schemas['TaskResponseDto'];
export type TaskEvent = Schemas['TaskEventPayloadDto'];
export type Delivery = Schemas['DeliveryDto'];

/** How the console signs its requests: a bearer token (JWT) or an API key. */
export interface Credentials {
  kind: 'token' | 'key';
  value: string;
}

const STORAGE_KEY = 'media-tasks.console.credentials';

/** Session storage only: the credential lives as long as the tab and never goes in a URL. */
export function loadCredentials(): Credentials | undefined {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null') as Credentials | null;
    return saved && (saved.kind === 'token' || saved.kind === 'key') && typeof saved.value === 'string'
      ? saved
      : undefined;
  } catch {
    return undefined;
  }
}

export function saveCredentials(credentials: Credentials | undefined): void {
  if (credentials) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credentials));
  else sessionStorage.removeItem(STORAGE_KEY);
}

/** A JWT has three base64url parts; anything else pasted is taken for an API key. */
export function credentialsOf(input: string): Credentials {
  const value = input.trim();
  return { kind: /^[\w-]+\.[\w-]+\.[\w-]*$/.test(value) ? 'token' : 'key', value };
}

/** What the token says of its holder (unverified: the server decides; this only shapes the page). */
export function identityOf(credentials: Credentials): { user?: string; admin: boolean; expiresAt?: number } {
  if (credentials.kind === 'key') return { admin: false };
  try {
    const part = credentials.value.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part)) as { sub?: string; roles?: unknown; exp?: number };
    const roles = Array.isArray(claims.roles) ? claims.roles : [];
    return { user: claims.sub, admin: roles.includes('admin'), expiresAt: claims.exp ? claims.exp * 1000 : undefined };
  } catch {
    return { admin: false };
  }
}

export function authHeaders(credentials: Credentials): Record<string, string> {
  return credentials.kind === 'token'
    ? { authorization: `Bearer ${credentials.value}` }
    : { 'x-api-key': credentials.value };
}

/** An answer other than 2xx, with the platform's error body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: { field: string; message: string }[] = [],
  ) {
    super(message);
  }
}

type ErrorBody = { code?: string; message?: string; errors?: { field: string; message: string }[] };

export function apiErrorOf(status: number, body: unknown): ApiError {
  const error = (body ?? {}) as ErrorBody;
  return new ApiError(status, error.code ?? `http_${status}`, error.message ?? `HTTP ${status}`, error.errors ?? []);
}

export type Client = ReturnType<typeof createClient<paths>>;

/** The typed client of the platform's API (the same document the forms come from). */
export function apiClient(credentials: Credentials, onUnauthorized: () => void): Client {
  const client = createClient<paths>({ baseUrl: location.origin });
  const auth: Middleware = {
    onRequest({ request }) {
      for (const [name, value] of Object.entries(authHeaders(credentials))) request.headers.set(name, value);
      return request;
    },
    onResponse({ response }) {
      if (response.status === 401) onUnauthorized();
      return response;
    },
  };
  client.use(auth);
  return client;
}

/** The data of an openapi-fetch answer, or its error thrown as an ApiError. */
export async function ok<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<Exclude<T, undefined>> {
  const { data, error, response } = await call;
  if (!response.ok) throw apiErrorOf(response.status, error);
  return data as Exclude<T, undefined>;
}
