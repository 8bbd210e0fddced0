import { BeforeApplicationShutdown, Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { isUuid } from '../common/uuid';
import type { FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';
import { TASK_EVENTS_SCOPE, TASK_EVENTS_TOKEN_TTL_SECONDS } from '../auth/scoped-token';
import type { AuthUser, TokenClaims } from '../auth/auth.types';
import { NotFoundException } from '../common/domain-exception';
import { AppConfig } from '../config/app-config';
import { HeldConnections, HeldPlace } from '../rate-limit/held-connections.service';
import type { TaskEntity } from '../tasks/entities/task.entity';
import { EVENT_FOR_STATUS } from '../tasks/task-state-machine';
import { TASKS_PATH } from '../tasks/task.mapper';
import { isTerminal, TaskEventType } from '../tasks/task.enums';
import { TasksRepository } from '../tasks/tasks.repository';
import { TaskEventsTokenResponseDto } from './dto/task-events-token-response.dto';
import { payloadOf, TaskEventPayload } from './event-payload';
import { SSE_HEADERS, SSE_HEARTBEAT, sseEvent, sseRetry } from './sse';
import { TaskEventSubscriptions } from './task-event-subscriptions';

const TERMINAL_EVENTS: ReadonlySet<string> = new Set([
  TaskEventType.Completed,
  TaskEventType.Failed,
  TaskEventType.Cancelled,
]);

/** One open stream: sends each event once, in rising sequence, and ends after a terminal one. */
class LiveStream {
  private heartbeat?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly res: ServerResponse,
    private lastSent: number,
    private readonly onClose: () => void,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  send(payload: TaskEventPayload): void {
    // Events can arrive twice (buffered during setup, then live) or late (from another process): send each once.
    if (this.closed || payload.sequence <= this.lastSent) return;
    this.lastSent = payload.sequence;
    this.res.write(sseEvent(payload));
    if (TERMINAL_EVENTS.has(payload.event_type)) this.close();
  }

  keepAlive(intervalMs: number): void {
    if (this.closed) return;
    this.heartbeat = setInterval(() => this.res.write(SSE_HEARTBEAT), intervalMs);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.onClose();
    if (!this.res.writableEnded && !this.res.destroyed) this.res.end();
  }
}

/**
 * Live Server-Sent Events of one task. Events reach this process over the task's channel (TaskEventSubscriptions) from
 * wherever the transition ran; the stream subscribes before it reads the row, so no event falls between the two.
 */
@Injectable()
export class TaskEventStreamService implements BeforeApplicationShutdown {
  private readonly open = new Set<LiveStream>();
  /** Set at shutdown: a stream that opens after it is ended at once too, or it would hold the server open. */
  private closing = false;

  constructor(
    private readonly tasks: TasksRepository,
    private readonly subscriptions: TaskEventSubscriptions,
    private readonly jwt: JwtService,
    private readonly config: AppConfig,
    private readonly held: HeldConnections,
  ) {}

  /**
   * Answers the request with the stream. Until the row is read nothing is written, so a 404, a 429 (too many held
   * connections) or a 503 is an ordinary JSON error; after that the reply is hijacked and written raw. A live stream
   * holds one of the user's places (HeldConnections) until it closes; a finished task's answer holds none.
   */
  async stream(user: AuthUser, taskId: string, lastEventId: number, reply: FastifyReply): Promise<void> {
    if (!isUuid(taskId)) throw new NotFoundException('task', taskId);
    // Events that come while the row is read wait here, then go out in order once the stream is open.
    const early: TaskEventPayload[] = [];
    let deliver = (payload: TaskEventPayload): void => void early.push(payload);
    const unsubscribe = await this.subscriptions.subscribe(taskId, (payload) => deliver(payload));
    let task: TaskEntity;
    try {
      task = await this.findVisible(user, taskId);
    } catch (err) {
      unsubscribe();
      throw err;
    }
    const finalEvent = EVENT_FOR_STATUS[task.status];
    if (isTerminal(task.status) && task.eventSeq <= lastEventId) {
      // The client has the last event already; 204 is what stops a browser's EventSource from reconnecting.
      unsubscribe();
      await reply.status(204).send();
      return;
    }

    let place: HeldPlace | undefined;
    if (!isTerminal(task.status)) {
      try {
        place = await this.held.acquireOrRefuse(user.id, reply);
      } catch (err) {
        unsubscribe();
        throw err;
      }
    }

    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...SSE_HEADERS, 'x-request-id': String(reply.request.id) });
    res.write(sseRetry());
    const live = this.track(res, lastEventId, () => {
      unsubscribe();
      place?.release();
    });
    deliver = (payload) => live.send(payload);
    if (isTerminal(task.status) && finalEvent) {
      live.send(payloadOf(finalEvent, task, task.eventSeq, task.completedAt ?? task.updatedAt));
      return;
    }
    for (const payload of early) live.send(payload);
    if (this.closing) return live.close();
    live.keepAlive(this.config.sseHeartbeatMs);
  }

  /** A short-lived token that opens this task's stream only, for clients that cannot send headers. */
  async issueToken(user: AuthUser, taskId: string): Promise<TaskEventsTokenResponseDto> {
    await this.findVisible(user, taskId);
    const exp = Math.floor(Date.now() / 1000) + TASK_EVENTS_TOKEN_TTL_SECONDS;
    const claims: TokenClaims & { exp: number } = {
      sub: user.id,
      ...(user.roles.length ? { roles: user.roles } : {}),
      scope: TASK_EVENTS_SCOPE,
      task: taskId,
      exp,
    };
    const token = this.jwt.sign(claims);
    return {
      token,
      url: `${TASKS_PATH}/${taskId}/events?token=${encodeURIComponent(token)}`,
      expires_at: new Date(exp * 1000).toISOString(),
    };
  }

  /** Ends every open stream, so the server can close; clients reconnect to another process. */
  beforeApplicationShutdown(): void {
    this.closing = true;
    for (const live of [...this.open]) live.close();
  }

  private track(res: ServerResponse, lastEventId: number, release: () => void): LiveStream {
    const live = new LiveStream(res, lastEventId, () => {
      release();
      this.open.delete(live);
    });
    this.open.add(live);
    res.on('close', () => live.close());
    res.on('error', () => live.close());
    // The client may have gone while the row was read, before 'close' had a listener.
    if (!res.socket || res.socket.destroyed) live.close();
    return live;
  }

  /** The task if the caller may see it (the owner, or an admin), as GET /tasks/{id} decides; else 404. */
  private async findVisible(user: AuthUser, taskId: string): Promise<TaskEntity> {
    if (!isUuid(taskId)) throw new NotFoundException('task', taskId);
    const task = await this.tasks.findOwned(taskId, user.isAdmin ? undefined : user.id);
    if (!task) throw new NotFoundException('task', taskId);
    return task;
  }
}
