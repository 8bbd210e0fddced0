#!/usr/bin/env node
// The `media-tasks` command line. Builds the client first when it has not been built (right after `npm install`).
const { existsSync } = require('node:fs');
const { execSync } = require('node:child_process');
const { join } = require('node:path');

const root = join(__dirname, '..');
const compiled = join(root, 'dist', 'cli.js');
if (!existsSync(compiled)) execSync('npm run build --silent', { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
require(compiled).run();
