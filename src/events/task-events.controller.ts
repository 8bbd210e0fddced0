import { Controller, Get, Headers, HttpCode, Param, Post, Res } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiHeader,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiQuery,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { CurrentUser } from '../auth/auth.decorators';
import type { AuthUser } from '../auth/auth.types';
import { AcceptsScopedToken, TASK_EVENTS_SCOPE } from '../auth/scoped-token';
import { TaskEventsTokenResponseDto } from './dto/task-events-token-response.dto';
import { parseLastEventId } from './sse';
import { TaskEventStreamService } from './task-event-stream.service';

@ApiTags('tasks')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'Missing, expired or invalid token' })
@ApiNotFoundResponse({ description: 'No such task of yours' })
@ApiServiceUnavailableResponse({ description: 'Postgres or Redis is unavailable; see Retry-After' })
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
  })
  @ApiHeader({
    name: 'Last-Event-ID',
    required: false,
    description: 'The last sequence received; events up to it are not sent again (EventSource sends it on reconnect)',
  })
  @ApiOkResponse({
    description: 'text/event-stream of the task events',
    content: { 'text/event-stream': { schema: { type: 'string' } } },
  })
  @ApiNoContentResponse({ description: 'The task has finished and Last-Event-ID shows its final event was received' })
  @ApiTooManyRequestsResponse({
    description: 'You (or this server) hold too many connections open (HELD_CONNECTIONS_PER_USER); see Retry-After',
  })
  async events(
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
  eventsToken(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<TaskEventsTokenResponseDto> {
    return this.streams.issueToken(user, id);
  }
}
