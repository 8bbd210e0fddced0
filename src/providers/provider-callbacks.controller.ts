import { Controller, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiExcludeEndpoint } from '@nestjs/swagger';
import { Public } from '../auth/auth.decorators';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { AppConfig } from '../config/app-config';
import { QueueGateway } from '../queue/queue.gateway';
import { isValidCallback, PROVIDER_CALLBACK_PATH } from './provider-callbacks';

/**
 * A provider's "your job ended" call (RunPod's webhook, when PUBLIC_URL is set): the task's next poll, waiting as a
 * delayed job, runs now. The body is not read; the poll asks the provider what happened.
 */
@Controller()
export class ProviderCallbacksController {
  constructor(
    private readonly config: AppConfig,
    private readonly queue: QueueGateway,
  ) {}

  @Post(PROVIDER_CALLBACK_PATH)
  @Public()
  @HttpCode(200)
  @ApiExcludeEndpoint()
  async jobEnded(
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
