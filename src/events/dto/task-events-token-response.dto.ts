import { ApiProperty } from '@nestjs/swagger';

export class TaskEventsTokenResponseDto {
  @ApiProperty({
    description: 'A JWT good only for reading this task\'s event stream, for 5 minutes (scope "task-events")',
  })
  token: string;

  @ApiProperty({
    description: 'The stream URL with the token in it, ready for `new EventSource(url)`',
    example: '/api/v1/media/tasks/4f1c…/events?token=eyJ…',
  })
  url: string;

  @ApiProperty({ description: 'When the token stops opening streams (a stream already open goes on)' })
  expires_at: string;
}
