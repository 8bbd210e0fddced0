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
import { TaskEventSubscriptions, type Unsubscribe } from './task-event-subscriptions';

const TERMINAL_EVENTS: ReadonlySet<string> = new Set([
  TaskEventType.Completed,
  TaskEventType.Failed,
  TaskEventType.Cancelled,
]);

/** Tasks whose last sent sequence a feed remembers: past it the longest-quiet task is forgotten. */
const FEED_REMEMBERED_TASKS = 10_000;

/**
 * One open stream: sends each task's events once, in rising sequence (they can arrive twice — buffered during setup,
 * then live — or late, from another process). A task's stream ends after its terminal event; a feed of many tasks
 * goes on, and has no `id:` lines: sequences are per task (`data.sequence`), not a position in the feed.
 */
class LiveStream {
  private heartbeat?: NodeJS.Timeout;
  private closed = false;
  private readonly lastSent = new Map<string, number>();

  constructor(
    private readonly res: ServerResponse,
    private readonly kind: { after: number } | 'feed',
    private readonly onClose: () => void,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  send(payload: TaskEventPayload): void {
    if (this.closed) return;
    const floor = this.kind === 'feed' ? 0 : this.kind.after;
    if (payload.sequence <= (this.lastSent.get(payload.task_id) ?? floor)) return;
    // Map order is insertion order: deleting first keeps the oldest-updated task at the front.
    this.lastSent.delete(payload.task_id);
    this.lastSent.set(payload.task_id, payload.sequence);
    if (this.lastSent.size > FEED_REMEMBERED_TASKS) this.lastSent.delete(this.lastSent.keys().next().value!);
    if (this.kind === 'feed') return void this.res.write(sseEvent(payload, { id: false }));
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
 * Live Server-Sent Events of one task, and the feeds of all of a user's tasks (or every task, for admins). Events reach
 * this process over the task's or the owner's channel (TaskEventSubscriptions) from wherever the transition ran; a
 * task's stream subscribes before it reads the row, so no event falls between the two.
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
    const unsubscribe = await this.subscriptions.subscribe({ task: taskId }, (payload) => deliver(payload));
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
    const live = this.track(res, { after: lastEventId }, () => {
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

  /**
   * Answers the request with the feed of the events of every task of the user's (`all`: of every user's; the caller
   * checked that they may). It holds one of the user's places until it closes and never ends by itself; nothing is
   * replayed: a client that reconnects reads the list for what it missed.
   */
  async streamFeed(user: AuthUser, scope: 'own' | 'all', reply: FastifyReply): Promise<void> {
    const place = await this.held.acquireOrRefuse(user.id, reply);
    // Events that come before the stream is open (the channel may be listened to already) wait here.
    const early: TaskEventPayload[] = [];
    let deliver = (payload: TaskEventPayload): void => void early.push(payload);
    let unsubscribe: Unsubscribe;
    try {
      unsubscribe =
        scope === 'all'
          ? await this.subscriptions.subscribe({ all: true }, (payload) => deliver(payload))
          : // Owner channels are named by a hash of the user id: the id itself decides.
            await this.subscriptions.subscribe({ owner: user.id }, (payload) => {
              if (payload.user_id === user.id) deliver(payload);
            });
    } catch (err) {
      place.release();
      throw err;
    }

    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...SSE_HEADERS, 'x-request-id': String(reply.request.id) });
    res.write(sseRetry());
    const live = this.track(res, 'feed', () => {
      unsubscribe();
      place.release();
    });
    deliver = (payload) => live.send(payload);
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

  private track(res: ServerResponse, kind: { after: number } | 'feed', release: () => void): LiveStream {
    const live = new LiveStream(res, kind, () => {
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
