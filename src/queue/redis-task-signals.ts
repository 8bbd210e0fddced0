import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { RedisService } from './redis.service';
import { CancelHandler, TaskSignalsService } from './task-signals.service';

/** Cancel signals over Redis pub/sub, on the process's shared subscriber connection. */
@Injectable()
export class RedisTaskSignals extends TaskSignalsService implements OnModuleDestroy {
  private readonly logger = new Logger('TaskSignals');
  private readonly handlers = new Set<CancelHandler>();
  private subscribed = false;

  constructor(private readonly redis: RedisService) {
    super();
  }

  private get channel(): string {
    return this.redis.key('signals', 'cancel');
  }

  async publishCancel(taskId: string): Promise<void> {
    try {
      await this.redis.client.publish(this.channel, taskId);
    } catch (err) {
      // The row is already cancelled: a worker finishing the task cannot overwrite that, it only wastes work.
      this.logger.warn({ taskId }, `cancel signal not sent: ${(err as Error).message}`);
    }
  }

  onCancel(handler: CancelHandler): void {
    this.handlers.add(handler);
    if (this.subscribed) return;
    this.subscribed = true;
    const subscriber = this.redis.getSubscriber();
    subscriber.on('message', (channel: string, taskId: string) => {
      if (channel !== this.channel) return;
      for (const h of this.handlers) h(taskId);
    });
    this.redis
      .subscription('subscribe', this.channel)
      .catch((err: Error) => this.logger.warn(`subscribe failed: ${err.message}`));
  }

  onModuleDestroy(): void {
    this.handlers.clear();
  }
}
