import { hmac } from 'fast-sha256';
import { Webhook, WebhookVerificationError as StandardWebhookError } from 'standardwebhooks';
import { WebhookVerificationError } from './errors';
import type { TaskEvent } from './types';

const WHSEC_PREFIX = 'whsec_';

/** Headers as Node (IncomingHttpHeaders), fetch (Headers) or a plain object give them. */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

/** The body of a batch's one `batch.completed` webhook. */
export interface BatchCompletedEvent {
  event_type: 'batch.completed';
  batch_id: string;
  timestamp: string;
  data: { total: number; counts: Record<string, number> };
  user_id: string;
  metadata: Record<string, unknown> | null;
}

export type WebhookEvent = TaskEvent | BatchCompletedEvent;

export interface VerifyOptions {
  /**
   * Which signature to check: `standard` (webhook-id, webhook-timestamp, webhook-signature; the timestamp must be
   * within 5 minutes), `hex` (X-Webhook-Signature: sha256=<hex HMAC of the body>; no timestamp, so no replay
   * window), or `auto` (the default): Standard Webhooks when its headers are there, else the hex one.
   */
  scheme?: 'auto' | 'standard' | 'hex';
}

/**
 * Checks a webhook's signature against its exact body and the secret the task (or the deployment) signs with, and
 * answers the parsed body. Throws WebhookVerificationError for a missing, stale or wrong signature. Pass the raw
 * body as received (a string or its bytes), never JSON re-serialised.
 */
export function verifyWebhook<T = WebhookEvent>(
  body: string | Uint8Array,
  headers: WebhookHeaders,
  secret: string,
  options: VerifyOptions = {},
): T {
  const get = headerReader(headers);
  const text = typeof body === 'string' ? body : new TextDecoder().decode(body);
  const scheme = options.scheme ?? 'auto';
  const standard = scheme === 'standard' || (scheme === 'auto' && get('webhook-signature') !== undefined);
  if (standard) verifyStandard(text, get, secret);
  else verifyHex(text, get('x-webhook-signature'), secret);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new WebhookVerificationError('the webhook body is not JSON');
  }
}

/** Standard Webhooks through its reference library; a non-whsec_ secret is its UTF-8 bytes, as the platform signs. */
function verifyStandard(body: string, get: (name: string) => string | undefined, secret: string): void {
  const webhook = new Webhook(keyBytes(secret), { format: 'raw' });
  const headers = {
    'webhook-id': get('webhook-id') ?? '',
    'webhook-timestamp': get('webhook-timestamp') ?? '',
    'webhook-signature': get('webhook-signature') ?? '',
  };
  try {
    webhook.verify(body, headers);
  } catch (err) {
    if (err instanceof StandardWebhookError) throw new WebhookVerificationError(err.message);
    throw err;
  }
}

function verifyHex(body: string, header: string | undefined, secret: string): void {
  if (!header) throw new WebhookVerificationError('Missing required headers');
  const match = /^sha256=([0-9a-f]{64})$/i.exec(header.trim());
  if (!match) throw new WebhookVerificationError('X-Webhook-Signature is not sha256=<hex>');
  const expected = hmac(keyBytes(secret), new TextEncoder().encode(body));
  if (!timingSafeEqual(expected, hexBytes(match[1]))) {
    throw new WebhookVerificationError('No matching signature found');
  }
}

/**
 * The key a secret stands for, as the platform and every Standard Webhooks library read it: base64 after `whsec_`,
 * else the secret's UTF-8 bytes. A whsec_ secret that is not base64 is a mistake of configuration, not a forged
 * webhook: a TypeError.
 */
function keyBytes(secret: string): Uint8Array {
  if (!secret.startsWith(WHSEC_PREFIX)) return new TextEncoder().encode(secret);
  const encoded = secret.slice(WHSEC_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) throw new TypeError('a whsec_ secret must be base64 after the prefix');
  return Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
}

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!, (pair) => parseInt(pair, 16));
}

function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function headerReader(headers: WebhookHeaders): (name: string) => string | undefined {
  if (typeof Headers !== 'undefined' && headers instanceof Headers) return (name) => headers.get(name) ?? undefined;
  const lower = new Map<string, string>();
  for (const [name, value] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (value !== undefined) lower.set(name.toLowerCase(), Array.isArray(value) ? value.join(', ') : value);
  }
  return (name) => lower.get(name);
}
