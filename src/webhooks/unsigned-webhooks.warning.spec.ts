import { Logger } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { UNSIGNED_WEBHOOKS_WARNING, UnsignedWebhooksWarning } from './unsigned-webhooks.warning';

const PRODUCTION = { NODE_ENV: 'production', JWT_SECRET: 'a-production-secret-0123456789abcdef0123' };

describe('UnsignedWebhooksWarning', () => {
  afterEach(() => jest.restoreAllMocks());

  it('warns at boot in production when webhooks may go out unsigned, and only then', () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const boot = (env: Record<string, string>) =>
      new UnsignedWebhooksWarning(AppConfig.fromEnv(env)).onApplicationBootstrap();

    boot({ ...PRODUCTION, WEBHOOK_REQUIRE_SIGNATURE: 'false' });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledWith(UNSIGNED_WEBHOOKS_WARNING);

    boot({ ...PRODUCTION });
    boot({ ...PRODUCTION, WEBHOOK_REQUIRE_SIGNATURE: 'true' });
    boot({ NODE_ENV: 'development', WEBHOOK_REQUIRE_SIGNATURE: 'false' });
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it('refuses a value other than true or false', () => {
    expect(() => AppConfig.fromEnv({ WEBHOOK_REQUIRE_SIGNATURE: 'no' })).toThrow(/WEBHOOK_REQUIRE_SIGNATURE/);
  });
});
