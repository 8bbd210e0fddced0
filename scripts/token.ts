import { parseArgs } from 'node:util';
import { AppConfig } from '../src/config/app-config';
import { ConfigError } from '../src/config/env.schema';
import { signToken } from '../src/auth/token';

/**
 * `npm run token -- --sub alice [--admin] [--ttl 24h]` (in the image: `node dist/scripts/token.js --sub alice`):
 * prints a bearer token signed with JWT_SECRET, read from the environment as the platform reads it.
 */
const { values } = parseArgs({
  options: {
    sub: { type: 'string' },
    admin: { type: 'boolean', default: false },
    ttl: { type: 'string', default: '24h' },
  },
});
if (!values.sub) {
  process.stderr.write('usage: npm run token -- --sub <user id> [--admin] [--ttl 24h]\n');
  process.exit(2);
}
let config: AppConfig;
try {
  config = AppConfig.fromProcess();
} catch (err) {
  // The same configuration the platform would refuse: its message says which variable and why; a stack would bury it.
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}
const token = signToken(config.jwtSecret, {
  sub: values.sub,
  admin: values.admin,
  ttl: values.ttl,
  issuer: config.jwtIssuer,
  audience: config.jwtAudience,
});
process.stdout.write(`${token}\n`);
