import { Controller, Get, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags, getSchemaPath } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { CurrentUser } from '../auth/auth.decorators';
import type { AuthUser } from '../auth/auth.types';
import { ApiAuthenticated, ApiErrors } from '../common/openapi';
import { TASK_EVENT_EXAMPLE, TaskEventFeedEventDto } from '../openapi/webhook-payloads.dto';
import { ScopeQueryDto } from '../tasks/dto/task-search.dto';
import { coversAllUsers } from '../tasks/task.mapper';
import { TaskEventStreamService } from './task-event-stream.service';

const FEED_EVENT = { event: 'task.completed', data: TASK_EVENT_EXAMPLE };

@ApiTags('tasks')
@ApiAuthenticated()
@Controller('api/v1/media')
export class TaskEventFeedController {
  constructor(private readonly streams: TaskEventStreamService) {}

  @Get('events')
  @ApiOperation({
    summary: 'A live stream of the events of all your tasks (Server-Sent Events)',
    description:
      'Every task.* event (created, started, progress, completed, failed, cancelled) of every task of yours as it ' +
      "happens, or of every user's tasks with scope=all (admins only): `event: <event_type>` and `data: <the webhook " +
      "body>` (task_id, sequence, data.status, progress, output_data, error, user_id…), as on a task's own stream, " +
      'but without `id:` lines (`sequence` counts per task: order by it within a task). A comment line every ' +
      'SSE_HEARTBEAT_MS while idle; the stream never closes by itself (the server ends it when it shuts down). Events ' +
      'missed while disconnected are not replayed: on reconnecting, read GET /api/v1/media/tasks for the current ' +
      'state. Authenticate with a bearer token or an X-API-Key header; the stream holds one of your ' +
      'HELD_CONNECTIONS_PER_USER places while open.',
  })
  @ApiProduces('text/event-stream')
  @ApiOkResponse({
    description: 'Task events as Server-Sent Events (the schema is one event; `data` is the webhook body)',
    content: {
      'text/event-stream': {
        schema: { $ref: getSchemaPath(TaskEventFeedEventDto) },
        examples: { completed: { summary: 'On the wire: event: task.completed, data: {…}', value: FEED_EVENT } },
      },
    },
  })
  @ApiErrors(
    [400, 'scope is neither own nor all'],
    [403, 'scope=all from a non-admin (an API key is never an admin), or an API key without the scope `tasks`'],
    [429, 'You (or this server) hold too many connections open (HELD_CONNECTIONS_PER_USER), or too many requests'],
    [503, 'The event channel (Redis or Postgres) did not confirm the subscription; retry after Retry-After'],
  )
  async streamOwnTaskEvents(
    @CurrentUser() user: AuthUser,
    @Query() query: ScopeQueryDto,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    await this.streams.streamFeed(user, coversAllUsers(user, query.scope) ? 'all' : 'own', reply);
  }
}
