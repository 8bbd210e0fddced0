import { Global, Module } from '@nestjs/common';
import { ApiKeysModule } from '../../api-keys/api-keys.module';
import { providerByBackend } from '../../common/backend-provider';
import { PostgresRateLimiters, RateLimiters, RedisRateLimiters } from '../../rate-limit/rate-limiters';
import { FlowSchedules } from '../flow-ports';
import { FlowScheduleKeeper } from './flow-schedule-keeper';
import { FlowSchedulesService } from './flow-schedules.service';
import { FlowTickHandler } from './flow-tick.handler';
import { HooksController } from './hooks.controller';
import { HooksService } from './hooks.service';
import { ScheduledFlowsRepository } from './scheduled-flows.repository';

/**
 * The triggers of flows, in every role: the schedules (FlowSchedules for the definitions, FlowTickHandler for the
 * flows worker, and the pass that re-asserts the schedulers in workers). Needs FlowRunStarter from the runs' module,
 * which must be global (as this one is, so the definitions find FlowSchedules).
 */
@Global()
@Module({
  providers: [
    FlowSchedulesService,
    { provide: FlowSchedules, useExisting: FlowSchedulesService },
    FlowTickHandler,
    ScheduledFlowsRepository,
    FlowScheduleKeeper,
  ],
  exports: [FlowSchedules, FlowSchedulesService, FlowTickHandler],
})
export class FlowTriggersModule {}

/**
 * The inbound hooks (`POST /hooks/{hook_id}`), for the API role. Needs FlowHookDirectory and FlowRunStarter from the
 * flows' global modules.
 */
@Module({
  imports: [ApiKeysModule],
  controllers: [HooksController],
  providers: [
    HooksService,
    providerByBackend(RateLimiters, { redis: RedisRateLimiters, postgres: PostgresRateLimiters }),
  ],
})
export class FlowHooksHttpModule {}
