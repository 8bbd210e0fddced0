import { Controller, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiSecurity,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Public } from '../../auth/auth.decorators';
import { API_KEY_SCHEME, ApiErrors, ApiPublic, BEARER_SCHEME } from '../../common/openapi';
import { FlowRunStartedDto } from '../dto/flow-run.dto';
import { HookBodyRoute, HookRequest } from './hook-body';
import { HookRateLimitedException, HooksService } from './hooks.service';

/** Inbound hooks of flows: outside `/api/v1` and its authentication, each flow's trigger says what it needs. */
const SignatureHeader = (name: string, description: string) =>
  ApiHeader({ name, required: false, description, schema: { type: 'string' } });

@ApiTags('flow hooks')
@Controller('hooks')
export class HooksController {
  constructor(private readonly hooks: HooksService) {}

  @Post(':hookId')
  @Public()
  @HookBodyRoute()
  @HttpCode(202)
  @ApiOperation({
    summary: "Start a run of the hook's flow with the body as its trigger (JSON, form-urlencoded or text)",
    description:
      'Signed (Standard Webhooks or X-Hub-Signature-256 / X-Signature) when the flow has a secret; with the owner’s ' +
      'API key when it asks for one. A repeated sender event id (webhook-id) answers 200 with the first run.',
    // Three body types, each with its own example (ApiBody would give all of them one).
    requestBody: {
      required: false,
      description:
        "The run's trigger, at most HOOK_MAX_BYTES: JSON (parsed), form fields (an object; a repeated field a list) or text",
      content: {
        'application/json': { schema: {}, example: { event: 'order.paid', order_id: 'A-1042', amount: 1999 } },
        'application/x-www-form-urlencoded': {
          schema: { type: 'object', additionalProperties: true },
          example: { event: 'order.paid', order_id: 'A-1042' },
        },
        'text/plain': { schema: { type: 'string' }, example: 'order A-1042 paid' },
      },
    },
  })
  // Public unless the flow asks for its owner's key or token: both schemes, or none.
  @ApiPublic()
  @ApiSecurity(API_KEY_SCHEME)
  @ApiSecurity(BEARER_SCHEME)
  @ApiParam({
    name: 'hookId',
    description: "The hook's id, from the flow's hook_url",
    example: 'pQ3v9uXk2b7LwYc1Zr8sTn4eHd6JmA0f',
  })
  @SignatureHeader('webhook-id', "Standard Webhooks: the sender's event id (also the dedupe key of the run)")
  @SignatureHeader('webhook-timestamp', 'Standard Webhooks: seconds since the epoch, within 5 minutes of now')
  @SignatureHeader('webhook-signature', 'Standard Webhooks: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`')
  @SignatureHeader('X-Hub-Signature-256', '`sha256=<hex HMAC-SHA256 of the raw body>` (instead of Standard Webhooks)')
  @SignatureHeader('X-Signature', '`sha256=<hex HMAC-SHA256 of the raw body>` (instead of Standard Webhooks)')
  @ApiAcceptedResponse({ type: FlowRunStartedDto, description: 'The run is queued' })
  @ApiOkResponse({ type: FlowRunStartedDto, description: 'The same sender event id was received before: its run' })
  @ApiErrors(
    [400, 'Malformed JSON, or an event id header over 200 characters'],
    [401, 'A signature, key or token the flow asks for is missing or wrong; the message names the header'],
    [403, "An API key or token of another user than the flow's owner"],
    [404, 'No such hook (hook_not_found)'],
    [413, 'The body is larger than HOOK_MAX_BYTES'],
    [415, 'A body other than JSON, form-urlencoded or text'],
    [429, 'Past HOOK_RATE_PER_MINUTE for this hook'],
    503,
  )
  async receiveHook(
    @Param('hookId') hookId: string,
    @Req() request: HookRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<{ run_id: string }> {
    try {
      const accepted = await this.hooks.receive(
        hookId,
        request.hookBody ?? { raw: Buffer.alloc(0), value: null },
        request.headers,
      );
      if (!accepted.created) void reply.status(200);
      return { run_id: accepted.runId };
    } catch (err) {
      if (err instanceof HookRateLimitedException) void reply.header('retry-after', String(err.retryAfterSeconds));
      throw err;
    }
  }
}
