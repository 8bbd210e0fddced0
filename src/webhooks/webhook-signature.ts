import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { webhookSecretProblem, WHSEC_PREFIX } from './webhook-secret';

/**
 * The key bytes of a webhook secret (CONTRACT.md): `whsec_<base64>` is base64 after the prefix, as Standard Webhooks
 * libraries read it; any other secret is its UTF-8 bytes. Throws when the secret cannot sign (see
 * webhookSecretProblem), so no signature is ever made with a key other than the one a receiver would derive.
 */
export function webhookKey(secret: string): Buffer {
  const problem = webhookSecretProblem(secret);
  if (problem) throw new Error(problem);
  return secret.startsWith(WHSEC_PREFIX)
    ? Buffer.from(secret.slice(WHSEC_PREFIX.length), 'base64')
    : Buffer.from(secret, 'utf8');
}

/**
 * The signature headers of one attempt: Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`)
 * and the scheme of the systems this platform replaces (`X-Webhook-Signature: sha256=<hex>` over the body, with
 * the same key bytes). The timestamp is the attempt's, so a receiver's replay window applies to each attempt.
 */
export function signatureHeaders(
  secret: string,
  msg: { id: string; body: string; at: Date; event: string },
): Record<string, string> {
  const key = webhookKey(secret);
  // The library is given the key bytes: its own reading of a raw string secret takes one byte per UTF-16 unit
  // (Latin-1), not the UTF-8 of the contract and of the hex scheme.
  const timestamp = Math.floor(msg.at.getTime() / 1000);
  return {
    'webhook-id': msg.id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': new Webhook(key, { format: 'raw' }).sign(msg.id, new Date(timestamp * 1000), msg.body),
    'x-webhook-signature': `sha256=${createHmac('sha256', key).update(msg.body).digest('hex')}`,
    'x-webhook-event': msg.event,
  };
}

/**
 * The headers of an unsigned attempt (WEBHOOK_REQUIRE_SIGNATURE=false and no secret anywhere): the same as a signed
 * one's without the two signatures, so receivers still deduplicate on `webhook-id`.
 */
export function unsignedHeaders(msg: { id: string; at: Date; event: string }): Record<string, string> {
  return {
    'webhook-id': msg.id,
    'webhook-timestamp': String(Math.floor(msg.at.getTime() / 1000)),
    'x-webhook-event': msg.event,
  };
}
