import { Injectable, Logger } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import { TaskEvent } from './task-event';

/**
 * The one place task events leave from. The state machine publishes here after each committed transition;
 * subscribers (webhooks, live streams, metrics) hang off `events$`.
 */
@Injectable()
export class TaskEventsService {
  private readonly logger = new Logger('TaskEvents');
  private readonly subject = new Subject<TaskEvent>();

  readonly events$: Observable<TaskEvent> = this.subject.asObservable();

  publish(event: TaskEvent): void {
    this.logger.log(
      { taskId: event.taskId, event: event.type, sequence: event.sequence, status: event.task.status },
      event.type,
    );
    this.subject.next(event);
  }
}
