// Bundles the client for browsers (one ES module, no Node built-ins): dist/browser/media-tasks.js.
const { build } = require('esbuild');
const { join } = require('node:path');

build({
  entryPoints: [join(__dirname, '..', 'src', 'index.ts')],
  outfile: join(__dirname, '..', 'dist', 'browser', 'media-tasks.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  // Error classes keep their names (err.name) even where bundling renames a clashing one.
  keepNames: true,
  logLevel: 'warning',
}).catch(() => process.exit(1));
