import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const CLIENT = join(__dirname, '..');
const GENERATED = join(CLIENT, 'src', 'generated', 'openapi.ts');

/** A package's file, in the client's own node_modules or the workspace root's (where npm hoists it). */
function packageFile(path: string): string {
  const found = [CLIENT, join(CLIENT, '..', '..')].map((dir) => join(dir, 'node_modules', path)).find(existsSync);
  if (!found) throw new Error(`${path} is not installed`);
  return found;
}

/** Runs a package's command line (openapi-typescript and prettier are ES modules inside: not for Jest's require). */
function run(bin: string, args: string[], input?: string): string {
  const result = spawnSync(process.execPath, [packageFile(bin), ...args], {
    input,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) throw new Error(`${bin}: ${result.stderr}`);
  return result.stdout;
}

describe('the generated types', () => {
  it('are what `npm run generate` makes of openapi.json now (regenerate after the document changes)', () => {
    const types = run('openapi-typescript/bin/cli.js', [
      join(CLIENT, '..', '..', 'openapi.json'),
      '--default-non-nullable',
      'false',
    ]);
    const formatted = run('prettier/bin/prettier.cjs', ['--stdin-filepath', GENERATED], types);
    expect(readFileSync(GENERATED, 'utf8') === formatted).toBe(true);
  });
});
