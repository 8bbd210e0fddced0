import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateEnv } from './env.schema';

const root = join(__dirname, '..', '..');

describe('.env.example', () => {
  const example = readFileSync(join(root, '.env.example'), 'utf8');
  const schema = readFileSync(join(__dirname, 'env.schema.ts'), 'utf8');

  it('lists every variable the platform reads (commented out where setting it at all changes what happens)', () => {
    const read = [...schema.matchAll(/^ {2}([A-Z][A-Z0-9_]+)\??[:= ]/gm)].map((m) => m[1]);
    expect(read.length).toBeGreaterThan(40);
    expect(read.filter((name) => !new RegExp(`^(# )?${name}=`, 'm').test(example))).toEqual([]);
  });

  it('is a valid configuration as it stands', () => {
    const env = Object.fromEntries(
      example
        .split('\n')
        .filter((line) => /^[A-Z][A-Z0-9_]*=/.test(line))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    expect(() => validateEnv(env)).not.toThrow();
  });
});
