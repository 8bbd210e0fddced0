import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/**
 * The key bytes of a webhook secret (CONTRACT.md): `whsec_<base64>` is base64 after the prefix, as Standard Webhooks
 * libraries read it; any other secret is its UTF-8 bytes.
 */
export function webhookKey(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret);
}

/** A verifier/signer for the secret, from the official Standard Webhooks library. */
export function standardWebhook(secret: string): Webhook {
  return secret.startsWith('whsec_') ? new Webhook(secret) : new Webhook(secret, { format: 'raw' });
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
  const timestamp = Math.floor(msg.at.getTime() / 1000);
  return {
    'webhook-id': msg.id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': standardWebhook(secret).sign(msg.id, new Date(timestamp * 1000), msg.body),
    'x-webhook-signature': `sha256=${createHmac('sha256', webhookKey(secret)).update(msg.body).digest('hex')}`,
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
