import { registerDecorator, ValidationOptions } from 'class-validator';

export const WHSEC_PREFIX = 'whsec_';

/** Standard Webhooks: a symmetric key is "random, between 24 bytes (192 bits) and 64 bytes (512 bits)". */
const KEY_BYTES = { min: 24, max: 64 };

/** Standard base64 (RFC 4648 §4), padding optional: what every Standard Webhooks library decodes alike. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

/**
 * Why a webhook secret cannot sign, or null when it can. A `whsec_` secret must be base64 of a key of 24 to 64 bytes;
 * any other secret is used as its UTF-8 bytes. The answer never quotes the secret.
 */
export function webhookSecretProblem(secret: string): string | null {
  if (!secret.startsWith(WHSEC_PREFIX)) return null;
  const encoded = secret.slice(WHSEC_PREFIX.length);
  if (!encoded || !BASE64.test(encoded)) {
    return 'a whsec_ secret must be standard base64 after the prefix (A-Z, a-z, 0-9, +, /, = padding)';
  }
  const bytes = Buffer.from(encoded, 'base64').length;
  if (bytes < KEY_BYTES.min || bytes > KEY_BYTES.max) {
    return `a whsec_ secret must decode to ${KEY_BYTES.min} to ${KEY_BYTES.max} bytes (this one decodes to ${bytes})`;
  }
  return null;
}

/** A webhook secret that can sign (see webhookSecretProblem); the message names the field, never the value. */
export function IsWebhookSecret(options?: ValidationOptions) {
  return (object: object, propertyName: string) =>
    registerDecorator({
      name: 'isWebhookSecret',
      target: object.constructor,
      propertyName,
      options: {
        message: (args) =>
          `${propertyName} cannot sign webhooks: ${webhookSecretProblem(String(args.value)) ?? 'invalid'}`,
        ...options,
      },
      validator: {
        validate: (value: unknown) => typeof value !== 'string' || webhookSecretProblem(value) === null,
      },
    });
}
