import { parseArgs } from 'node:util';
import { AppConfig } from '../src/config/app-config';
import { signToken } from '../src/auth/token';

/** `npm run token -- --sub alice [--admin] [--ttl 24h]`: prints a bearer token signed with JWT_SECRET. */
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
const config = AppConfig.fromProcess();
const token = signToken(config.jwtSecret, {
  sub: values.sub,
  admin: values.admin,
  ttl: values.ttl,
  issuer: config.jwtIssuer,
  audience: config.jwtAudience,
});
process.stdout.write(`${token}\n`);
