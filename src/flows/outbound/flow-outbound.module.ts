import { Module } from '@nestjs/common';
import { WebhooksModule } from '../../webhooks/webhooks.module';
import { FlowWebhooks } from './flow-webhooks';
import { HttpStepExecutor } from './http-step.executor';
import { NotifyStepExecutor } from './notify-step.executor';

/**
 * The flow steps that call out (`http`, `notify`) and the flow events sent as webhooks. The flows core gathers the
 * executors into FLOW_STEP_EXECUTORS and calls FlowWebhooks from its run transitions.
 */
@Module({
  imports: [WebhooksModule],
  providers: [HttpStepExecutor, NotifyStepExecutor, FlowWebhooks],
  exports: [HttpStepExecutor, NotifyStepExecutor, FlowWebhooks],
})
export class FlowOutboundModule {}
