import { Injectable, Logger } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import { TaskEvent } from './task-event';
import { TaskEventBroadcast } from './task-event-broadcast';

/**
 * The one place task events leave from. The state machine publishes here after each committed transition (the
 * webhook deliveries of that transition are written by the same statement, not from here); the metrics listen on
 * `events$`, and every event also goes to the task's and its owner's channels (Redis or Postgres, TaskEventBroadcast),
 * where the API processes serving its live streams hear it.
 */
@Injectable()
export class TaskEventsService {
  private readonly logger = new Logger('TaskEvents');
  private readonly subject = new Subject<TaskEvent>();

  readonly events$: Observable<TaskEvent> = this.subject.asObservable();

  constructor(private readonly broadcaster: TaskEventBroadcast) {}

  publish(event: TaskEvent): void {
    this.logger.log(
      { taskId: event.taskId, event: event.type, sequence: event.sequence, status: event.task.status },
      event.type,
    );
    this.broadcast(event);
    this.subject.next(event);
  }

  /**
   * Fire and forget: the transition is committed and the row holds the truth, so a hiccup of the channel costs live
   * streams an event (a reconnecting client reads the state) but must never fail the transition.
   */
  private broadcast(event: TaskEvent): void {
    this.broadcaster
      .send(event)
      .catch((err: Error) =>
        this.logger.warn(
          { taskId: event.taskId, event: event.type, sequence: event.sequence },
          `event not broadcast: ${err.message}`,
        ),
      );
  }
}
