import { createHmac, randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { webhookSecretProblem } from './webhook-secret';
import { signatureHeaders } from './webhook-signature';

const msg = { id: 'msg_1', body: '{"event_type":"task.completed"}', at: new Date(), event: 'task.completed' };

describe('webhook signatures', () => {
  it('signs a non-ASCII plain secret with its UTF-8 bytes in both schemes', () => {
    const secret = 'clé-secrète-ünïcødé-密钥';
    const utf8 = Buffer.from(secret, 'utf8');
    const headers = signatureHeaders(secret, msg);
    // The official library, given the secret's UTF-8 bytes, verifies the Standard Webhooks signature…
    expect(() => new Webhook(utf8, { format: 'raw' }).verify(msg.body, headers)).not.toThrow();
    // …and the hex scheme uses the same bytes.
    expect(headers['x-webhook-signature']).toBe(`sha256=${createHmac('sha256', utf8).update(msg.body).digest('hex')}`);
  });

  it('signs a whsec_ secret with its base64-decoded bytes in both schemes', () => {
    const key = randomBytes(32);
    const secret = `whsec_${key.toString('base64')}`;
    const headers = signatureHeaders(secret, msg);
    expect(() => new Webhook(secret).verify(msg.body, headers)).not.toThrow();
    expect(headers['x-webhook-signature']).toBe(`sha256=${createHmac('sha256', key).update(msg.body).digest('hex')}`);
  });

  it('refuses to sign with a whsec_ secret that is not base64 of 24 to 64 bytes', () => {
    expect(() => signatureHeaders('whsec_not-base64!!', msg)).toThrow(/base64/);
  });
});

describe('webhookSecretProblem', () => {
  const whsec = (bytes: number) => `whsec_${randomBytes(bytes).toString('base64')}`;

  it('accepts plain secrets and whsec_ secrets of 24 to 64 bytes, padded or not', () => {
    for (const secret of ['a-plain-secret-of-16+', 'ünïcødé-secret-value', whsec(24), whsec(32), whsec(64)]) {
      expect({ secret, problem: webhookSecretProblem(secret) }).toEqual({ secret, problem: null });
    }
    expect(webhookSecretProblem(whsec(32).replace(/=+$/, ''))).toBeNull();
  });

  it('refuses whsec_ secrets that are not standard base64, or decode to fewer than 24 or more than 64 bytes', () => {
    const bad = {
      whsec_: /base64/,
      'whsec_abc-def_ghijklmnopqrstuvwxyz0123': /base64/,
      'whsec_abcd efgh ijkl mnop qrst uvwx yz01': /base64/,
      'whsec_YW=JjZA==YWJjZA==YWJjZA==YWJjZA==': /base64/,
      whsec_YWJjZ: /base64/,
      [whsec(16)]: /24 to 64 bytes/,
      [whsec(65)]: /24 to 64 bytes/,
      whsec_supersecretvalue123: /24 to 64 bytes/,
    };
    for (const [secret, problem] of Object.entries(bad)) {
      expect(webhookSecretProblem(secret)).toMatch(problem);
      expect(webhookSecretProblem(secret)).not.toContain(secret.slice('whsec_'.length) || 'never');
    }
  });
});
