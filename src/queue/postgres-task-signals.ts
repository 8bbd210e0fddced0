import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { PostgresNotifications } from '../database/postgres-notifications';
import { CancelHandler, TaskSignalsService } from './task-signals.service';

/** The NOTIFY channel of cancel signals; the payload is the task id. */
export const CANCEL_CHANNEL = 'task_cancel';

/**
 * Cancel signals over Postgres NOTIFY, heard on the process's LISTEN connection (which listens again by itself after
 * Postgres restarts).
 */
@Injectable()
export class PostgresTaskSignals extends TaskSignalsService implements OnModuleDestroy {
  private readonly logger = new Logger('TaskSignals');
  private readonly handlers = new Set<CancelHandler>();
  private stopHearing?: () => void;

  constructor(private readonly notifications: PostgresNotifications) {
    super();
  }

  async publishCancel(taskId: string): Promise<void> {
    try {
      await this.notifications.notify(CANCEL_CHANNEL, taskId);
    } catch (err) {
      // The row is already cancelled: a worker finishing the task cannot overwrite that, it only wastes work.
      this.logger.warn({ taskId }, `cancel signal not sent: ${(err as Error).message}`);
    }
  }

  onCancel(handler: CancelHandler): void {
    this.handlers.add(handler);
    if (this.stopHearing) return;
    this.stopHearing = this.notifications.onNotification((channel, taskId) => {
      if (channel !== CANCEL_CHANNEL) return;
      for (const h of this.handlers) h(taskId);
    });
    // A failed first LISTEN is retried with the connection; until then signals are missed, as on Redis.
    this.notifications.listen(CANCEL_CHANNEL).catch((err: Error) => this.logger.warn(`listen failed: ${err.message}`));
  }

  onModuleDestroy(): void {
    this.handlers.clear();
    this.stopHearing?.();
    this.stopHearing = undefined;
  }
}
