import { Controller, Get, Headers, HttpCode, Param, Post, Res } from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiHeader,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiQuery,
  ApiSecurity,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { CurrentUser } from '../auth/auth.decorators';
import type { AuthUser } from '../auth/auth.types';
import { AcceptsScopedToken, TASK_EVENTS_SCOPE } from '../auth/scoped-token';
import { ApiAuthenticated, ApiErrors, TASK_EVENTS_TOKEN_SCHEME } from '../common/openapi';
import { TASK_EVENT_EXAMPLE, TaskEventStreamEventDto } from '../openapi/webhook-payloads.dto';
import { TASK_ID_PARAM } from '../tasks/dto/task-examples';
import { TaskEventsTokenResponseDto } from './dto/task-events-token-response.dto';
import { parseLastEventId } from './sse';
import { TaskEventStreamService } from './task-event-stream.service';

const SSE_EVENT = { id: '4', event: 'task.completed', data: TASK_EVENT_EXAMPLE };

@ApiTags('tasks')
@ApiAuthenticated()
@ApiParam(TASK_ID_PARAM)
@Controller('api/v1/media/tasks')
export class TaskEventsController {
  constructor(private readonly streams: TaskEventStreamService) {}

  @Get(':id/events')
  @AcceptsScopedToken(TASK_EVENTS_SCOPE)
  @ApiOperation({
    summary: "A live stream of the task's events (Server-Sent Events)",
    description:
      'Each event as `id: <sequence>`, `event: <event_type>` and `data: <the webhook body>`; a comment line every ' +
      'SSE_HEARTBEAT_MS while idle. The stream closes after task.completed, task.failed or task.cancelled; a task ' +
      'that has already finished gets its final event and the stream closes. Events missed while disconnected are ' +
      'not replayed: read the task for its state. Authenticate with a bearer token, or (EventSource cannot send ' +
      'headers) with `?token=` from `POST /tasks/{id}/events/token`; a full token is refused in the query string.',
  })
  @ApiProduces('text/event-stream')
  @ApiQuery({
    name: 'token',
    required: false,
    description: 'A task-events token from POST /api/v1/media/tasks/{id}/events/token (never a full token)',
    schema: { type: 'string' },
  })
  @ApiHeader({
    name: 'Last-Event-ID',
    required: false,
    description: 'The last sequence received; events up to it are not sent again (EventSource sends it on reconnect)',
  })
  @ApiSecurity(TASK_EVENTS_TOKEN_SCHEME)
  @ApiOkResponse({
    description: 'The task events as Server-Sent Events (the schema is one event; `data` is the webhook body)',
    content: {
      'text/event-stream': {
        schema: { $ref: getSchemaPath(TaskEventStreamEventDto) },
        examples: { completed: { summary: 'On the wire: id: 4, event: task.completed, data: {…}', value: SSE_EVENT } },
      },
    },
  })
  @ApiNoContentResponse({ description: 'The task has finished and Last-Event-ID shows its final event was received' })
  @ApiErrors(
    [404, 'No such task of yours'],
    [429, 'You (or this server) hold too many connections open (HELD_CONNECTIONS_PER_USER), or too many requests'],
  )
  async streamTaskEvents(
    @CurrentUser() user: AuthUser,
    @Param('id') id: string,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    await this.streams.stream(user, id, parseLastEventId(lastEventId), reply);
  }

  @Post(':id/events/token')
  @HttpCode(201)
  @ApiOperation({
    summary: "A 5-minute token that opens this task's event stream only, and the stream URL carrying it",
  })
  @ApiCreatedResponse({ type: TaskEventsTokenResponseDto })
  @ApiErrors([404, 'No such task of yours'])
  createTaskEventsToken(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<TaskEventsTokenResponseDto> {
    return this.streams.issueToken(user, id);
  }
}
