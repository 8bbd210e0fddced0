import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { AppConfig } from '../config/app-config';

export const UNSIGNED_WEBHOOKS_WARNING =
  'WEBHOOK_REQUIRE_SIGNATURE=false: tasks with a webhook_url and no secret are accepted and their webhooks go out ' +
  'unsigned, so receivers cannot tell them from forged ones';

/** A production process says at boot that webhooks may go out unsigned: an operator should see it in the logs. */
@Injectable()
export class UnsignedWebhooksWarning implements OnApplicationBootstrap {
  private readonly logger = new Logger('Webhooks');

  constructor(private readonly config: AppConfig) {}

  onApplicationBootstrap(): void {
    if (this.config.isProduction && !this.config.webhook.requireSignature) this.logger.warn(UNSIGNED_WEBHOOKS_WARNING);
  }
}
