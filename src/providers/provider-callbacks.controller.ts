import { Controller, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiProperty, ApiQuery, ApiTags } from '@nestjs/swagger';
import { Public } from '../auth/auth.decorators';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { ApiErrors, ApiPublic } from '../common/openapi';
import { AppConfig } from '../config/app-config';
import { QueueGateway } from '../queue/queue.gateway';
import { isValidCallback, PROVIDER_CALLBACK_PATH } from './provider-callbacks';

class CallbackReceivedDto {
  @ApiProperty({ type: Boolean, example: true })
  received!: true;
}

/**
 * A provider's "your job ended" call (RunPod's webhook, when PUBLIC_URL is set): the task's next poll, waiting as a
 * delayed job, runs now. The body is not read; the poll asks the provider what happened.
 */
@ApiTags('provider callbacks')
@Controller()
export class ProviderCallbacksController {
  constructor(
    private readonly config: AppConfig,
    private readonly queue: QueueGateway,
  ) {}

  @Post(PROVIDER_CALLBACK_PATH)
  @Public()
  @HttpCode(200)
  @ApiPublic()
  @ApiOperation({
    summary: "A provider's call when a job ends: the task is polled at once",
    description:
      'For providers, not clients: the platform gives this URL (signed with `sig`) to providers that call back ' +
      '(RunPod) when PUBLIC_URL is set. The body is ignored; what the job became is read from the provider.',
  })
  @ApiParam({ name: 'provider', example: 'runpod' })
  @ApiParam({ name: 'taskId', format: 'uuid', example: '4f1c2b9e-8a7d-4c3b-9e21-5d6f7a8b9c0d' })
  @ApiQuery({ name: 'sig', required: true, description: 'The signature the platform put in the URL it gave' })
  @ApiOkResponse({ type: CallbackReceivedDto })
  @ApiErrors(
    [404, 'The signature does not match the provider and task (no such callback)'],
    [429, 'Too many requests from this address were refused for want of valid credentials'],
    503,
  )
  async receiveProviderCallback(
    @Param('provider') provider: string,
    @Param('taskId') taskId: string,
    @Query('sig') sig: unknown,
  ): Promise<{ received: true }> {
    if (!isValidCallback(this.config, provider, taskId, sig)) {
      throw new DomainException(ErrorCode.NotFound, 'no such callback');
    }
    await this.queue.promoteTaskJob(taskId);
    return { received: true };
  }
}
