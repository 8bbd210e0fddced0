// Runs the compiled token script, building first when needed so `npm run token` works right after `npm install`.
const { existsSync } = require('node:fs');
const { execSync } = require('node:child_process');
const { join } = require('node:path');

const root = join(__dirname, '..');
const compiled = join(root, 'dist', 'scripts', 'token.js');
if (!existsSync(compiled)) execSync('npm run build --silent', { cwd: root, stdio: 'inherit' });
require(compiled);
