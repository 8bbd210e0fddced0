import { ApiProperty } from '@nestjs/swagger';

export class QueueCountsDto {
  @ApiProperty({ description: 'Jobs without a priority, ready to run' })
  waiting!: number;
  @ApiProperty({ description: 'Jobs with a priority, ready to run (every task job has one)' })
  prioritized!: number;
  @ApiProperty()
  active!: number;
  @ApiProperty({ description: 'Finished jobs still kept in Redis' })
  completed!: number;
  @ApiProperty({ description: 'Failed jobs still kept in Redis' })
  failed!: number;
  @ApiProperty()
  delayed!: number;
  @ApiProperty()
  waiting_children!: number;
}

export class QueueStatsDto extends QueueCountsDto {
  @ApiProperty({ description: 'Workers take no new job from a paused queue' })
  paused!: boolean;
}

export class QueueTotalsDto extends QueueCountsDto {
  @ApiProperty({ description: 'How many queues are paused' })
  paused!: number;
}

export class QueueStatsResponseDto {
  @ApiProperty({ type: 'object', additionalProperties: { $ref: '#/components/schemas/QueueStatsDto' } })
  queues!: Record<string, QueueStatsDto>;
  @ApiProperty({ type: QueueTotalsDto })
  totals!: QueueTotalsDto;
}
