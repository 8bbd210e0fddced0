import { createHash, randomBytes } from 'node:crypto';

/** Every key starts with this, so a leaked one is recognisable (secret scanners, logs). */
export const API_KEY_PREFIX = 'mt_';

/** Characters of the key kept in clear for display: the marker and 8 of its 43 random characters (48 of 256 bits). */
const DISPLAY_PREFIX_LENGTH = API_KEY_PREFIX.length + 8;

/** A new key: the marker and 32 random bytes, base64url. */
export function generateApiKey(): { key: string; hash: string; prefix: string } {
  const key = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { key, hash: hashApiKey(key), prefix: key.slice(0, DISPLAY_PREFIX_LENGTH) };
}

/**
 * SHA-256, hex. A slow password hash would add nothing: the key is 256 random bits, so it cannot be guessed from
 * its hash, and a fast hash can be looked up on every request.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}
