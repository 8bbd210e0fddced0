import { ApiProperty } from '@nestjs/swagger';
import { QueueName } from '../queue.constants';

export class QueueCountsDto {
  @ApiProperty({ description: 'Jobs without a priority, ready to run', example: 0 })
  waiting!: number;
  @ApiProperty({ description: 'Jobs with a priority, ready to run (every task job has one)', example: 12 })
  prioritized!: number;
  @ApiProperty({ description: 'Jobs a worker is running', example: 4 })
  active!: number;
  @ApiProperty({ description: 'Finished jobs still kept in Redis', example: 310 })
  completed!: number;
  @ApiProperty({ description: 'Failed jobs still kept in Redis', example: 7 })
  failed!: number;
  @ApiProperty({ description: 'Jobs waiting for their time (run_at, a retry backoff, a provider poll)', example: 3 })
  delayed!: number;
  @ApiProperty({ description: 'Jobs waiting for their child jobs (a split job waiting for its parts)', example: 1 })
  waiting_children!: number;
}

export class QueueStatsDto extends QueueCountsDto {
  @ApiProperty({ description: 'Workers take no new job from a paused queue', example: false })
  paused!: boolean;
}

/** A queue just paused or resumed: its name and counts. */
export class QueueStateDto extends QueueStatsDto {
  @ApiProperty({ enum: QueueName, enumName: 'QueueName', example: QueueName.Tasks })
  name!: string;
}

export class QueueTotalsDto extends QueueCountsDto {
  @ApiProperty({ description: 'How many queues are paused', example: 0 })
  paused!: number;
}

export class QueueStatsResponseDto {
  @ApiProperty({
    type: 'object',
    description: 'By queue name (tasks, maintenance, webhooks, flows)',
    additionalProperties: { $ref: '#/components/schemas/QueueStatsDto' },
    example: {
      tasks: {
        waiting: 0,
        prioritized: 12,
        active: 4,
        completed: 310,
        failed: 7,
        delayed: 3,
        waiting_children: 1,
        paused: false,
      },
    },
  })
  queues!: Record<string, QueueStatsDto>;
  @ApiProperty({ type: QueueTotalsDto })
  totals!: QueueTotalsDto;
}
