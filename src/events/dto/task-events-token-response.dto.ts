import { ApiProperty } from '@nestjs/swagger';

export class TaskEventsTokenResponseDto {
  @ApiProperty({
    description: 'A JWT good only for reading this task\'s event stream, for 5 minutes (scope "task-events")',
    example: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsInNjb3BlIjoidGFzay1ldmVudHMifQ.c2lnbmF0dXJl',
  })
  token: string;

  @ApiProperty({
    description: 'The stream URL with the token in it, ready for `new EventSource(url)`',
    example: '/api/v1/media/tasks/4f1c…/events?token=eyJ…',
  })
  url: string;

  @ApiProperty({
    format: 'date-time',
    description: 'When the token stops opening streams (a stream already open goes on)',
    example: '2026-12-04T10:20:30.000Z',
  })
  expires_at: string;
}
