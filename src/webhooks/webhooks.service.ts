import { Injectable } from '@nestjs/common';
import type { AuthUser } from '../auth/auth.types';
import { DomainException, ErrorCode, NotFoundException } from '../common/domain-exception';
import { WebhookQueue } from './webhook-queue.service';
import { coversAllUsers, decodeCursor, encodeCursor } from '../tasks/task.mapper';
import { TasksRepository } from '../tasks/tasks.repository';
import { WebhookDeliveriesRepository } from './webhook-deliveries.repository';
import { DeadLetterQueryDto, DeliveryDto, DeliveryListDto, DeliveryStatisticsDto, toDeliveryDto } from './webhook.dto';
import { isUuid } from '../common/uuid';

/** Reading and replaying a user's webhook deliveries; another user's delivery is answered 404. */
@Injectable()
export class WebhooksService {
  constructor(
    private readonly deliveries: WebhookDeliveriesRepository,
    private readonly tasks: TasksRepository,
    private readonly queue: WebhookQueue,
  ) {}

  async status(user: AuthUser, id: string): Promise<DeliveryDto> {
    if (!isUuid(id)) throw new NotFoundException('webhook delivery', id);
    const row = await this.deliveries.findOwned(id, ownerFilter(user));
    if (!row) throw new NotFoundException('webhook delivery', id);
    return toDeliveryDto(row);
  }

  async forTask(user: AuthUser, taskId: string): Promise<DeliveryListDto> {
    if (!isUuid(taskId) || !(await this.tasks.findOwned(taskId, ownerFilter(user)))) {
      throw new NotFoundException('task', taskId);
    }
    return { data: (await this.deliveries.listForTask(taskId)).map(toDeliveryDto) };
  }

  async deadLetters(user: AuthUser, query: DeadLetterQueryDto): Promise<DeliveryListDto> {
    const all = coversAllUsers(user, query.scope);
    let after: { createdAt: Date; id: string } | undefined;
    if (query.cursor) {
      after = decodeCursor(query.cursor) ?? undefined;
      if (!after) throw new DomainException(ErrorCode.ValidationFailed, 'cursor is not a valid next_cursor');
    }
    const limit = query.limit ?? 20;
    const { rows, hasMore } = await this.deliveries.listDead(all ? undefined : user.id, limit, after);
    return {
      data: rows.map(toDeliveryDto),
      next_cursor: hasMore ? encodeCursor(rows[rows.length - 1]) : null,
    };
  }

  async statistics(user: AuthUser, scope?: 'own' | 'all'): Promise<DeliveryStatisticsDto> {
    const all = coversAllUsers(user, scope);
    return { ...(await this.deliveries.statistics(all ? undefined : user.id)), scope: all ? 'all' : 'own' };
  }

  /** Delivers a delivered or dead delivery again, with the same webhook-id and a fresh round of retries. */
  async replay(user: AuthUser, id: string): Promise<DeliveryDto> {
    const current = await this.status(user, id);
    const reopened = await this.deliveries.reopen(id, ownerFilter(user));
    if (!reopened) {
      throw new DomainException(
        ErrorCode.InvalidTransition,
        `webhook delivery ${id} is ${current.status}: only delivered or dead deliveries can be replayed`,
        { status: current.status },
      );
    }
    await this.queue.addRetry(id, reopened.attempts);
    return toDeliveryDto(reopened);
  }
}

function ownerFilter(user: AuthUser): string | undefined {
  return user.isAdmin ? undefined : user.id;
}
