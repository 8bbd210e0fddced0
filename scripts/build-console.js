#!/usr/bin/env node
// Builds the web console (console/dist) when it is missing or older than its sources or the OpenAPI document its
// forms come from: `npm start` runs this first, so a fresh checkout serves /console with no other step.
const { spawnSync } = require('node:child_process');
const { existsSync, readdirSync, statSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const consoleDir = join(root, 'console');
const built = join(consoleDir, 'dist', 'index.html');

function newest(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newest(join(path, name))));
}

const sources = ['src', 'index.html', 'vite.config.ts', 'task-forms.ts', 'package.json'].map((p) => join(consoleDir, p));
const stale = !existsSync(built) || Math.max(...sources.map(newest), newest(join(root, 'openapi.json'))) > newest(built);
if (!stale && !process.argv.includes('--force')) process.exit(0);

// vite's package exports no bin path: find the package, then its bin.
const vite = join(require.resolve('vite/package.json', { paths: [consoleDir] }), '..', 'bin', 'vite.js');
const result = spawnSync(process.execPath, [vite, 'build', '--logLevel', 'warn'], { cwd: consoleDir, stdio: 'inherit' });
if (result.status !== 0) {
  process.stderr.write('the console did not build (see above); the API still starts, /console says it is not built\n');
  process.exitCode = process.argv.includes('--strict') ? 1 : 0;
}
