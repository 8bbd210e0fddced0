import { Controller, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiOkResponse,
  ApiOperation,
  ApiPayloadTooLargeResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Public } from '../../auth/auth.decorators';
import { HookBodyRoute, HookRequest } from './hook-body';
import { HookRateLimitedException, HooksService } from './hooks.service';

/** Inbound hooks of flows: outside `/api/v1` and its authentication, each flow's trigger says what it needs. */
@ApiTags('flows')
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
  })
  @ApiAcceptedResponse({ description: '{run_id}: the run is queued' })
  @ApiOkResponse({ description: '{run_id}: the same event was received before; its run' })
  @ApiUnauthorizedResponse({ description: 'A signature or key is missing or wrong; the message names the header' })
  @ApiPayloadTooLargeResponse({ description: 'The body is larger than HOOK_MAX_BYTES' })
  @ApiTooManyRequestsResponse({ description: 'Past HOOK_RATE_PER_MINUTE for this hook; Retry-After says when' })
  async receive(
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
