import { createHmac, timingSafeEqual } from 'node:crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { DomainException, ErrorCode } from '../../common/domain-exception';
import { webhookKey } from '../../webhooks/webhook-signature';

type Headers = Record<string, string | string[] | undefined>;

const HMAC_HEADERS = ['x-hub-signature-256', 'x-signature'] as const;

function refused(header: string, why: string): DomainException {
  return new DomainException(ErrorCode.Unauthorized, `${header}: ${why}`, { header });
}

function single(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Checks that the sender of a hook holds its secret (`whsec_<base64>` or raw, as task webhooks read it): Standard
 * Webhooks (`webhook-id`, `webhook-timestamp` within 5 minutes, `webhook-signature`) when `webhook-signature` is
 * sent, else `X-Hub-Signature-256` or `X-Signature` = `sha256=<hex HMAC-SHA256 of the raw body>`. Throws 401 naming
 * the header that is missing or wrong.
 */
export function verifyHookSignature(secret: string, raw: Buffer, headers: Headers): void {
  let key: Buffer;
  try {
    key = webhookKey(secret);
  } catch {
    // A secret the flow could not have been saved with; refuse rather than accept unsigned.
    throw refused('webhook-signature', 'this hook cannot verify signatures (its secret is unusable)');
  }
  if (single(headers, 'webhook-signature') !== undefined) {
    for (const name of ['webhook-id', 'webhook-timestamp']) {
      if (!single(headers, name))
        throw refused(name, 'missing (Standard Webhooks needs webhook-id and webhook-timestamp)');
    }
    try {
      new Webhook(key, { format: 'raw' }).verify(raw, {
        'webhook-id': single(headers, 'webhook-id') ?? '',
        'webhook-timestamp': single(headers, 'webhook-timestamp') ?? '',
        'webhook-signature': single(headers, 'webhook-signature') ?? '',
      });
      return;
    } catch (err) {
      const message = err instanceof WebhookVerificationError ? err.message : 'invalid';
      const header = /timestamp/i.test(message) ? 'webhook-timestamp' : 'webhook-signature';
      throw refused(header, message.toLowerCase().includes('timestamp') ? message : 'no signature matches the body');
    }
  }
  const name = HMAC_HEADERS.find((h) => single(headers, h) !== undefined);
  if (!name) {
    throw refused(
      'webhook-signature',
      'this hook needs a signature: Standard Webhooks headers, or X-Hub-Signature-256 / X-Signature = sha256=<hex>',
    );
  }
  const given = single(headers, name) ?? '';
  const match = /^sha256=([0-9a-f]{64})$/i.exec(given.trim());
  if (!match) throw refused(name, 'must be sha256=<hex HMAC-SHA256 of the body>');
  const expected = createHmac('sha256', key).update(raw).digest();
  if (!timingSafeEqual(expected, Buffer.from(match[1], 'hex'))) throw refused(name, 'does not match the body');
}
