import { Type } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional, OmitType } from '@nestjs/swagger';
import { AddAudioDto, CaptionDto, Img2VidDto } from '../../tasks/dto/task-create.dto';

const JOB_ID = '4f1c2b9e-8a7d-4c3b-9e21-5d6f7a8b9c0d';
const JOB_STATUSES = ['IN_QUEUE', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED'];
const ORCHESTRATOR_STATUSES = ['QUEUED', 'SUBMITTED', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED'];

const ID_ROTEIRO = {
  description: "The caller's script id: kept in the task's metadata, given back on the job and in its webhook",
  example: 'roteiro-42',
  oneOf: [{ type: 'string' }, { type: 'number' }],
};

/**
 * A body of the sources' video routes: the task's create fields (the platform's validation applies) and
 * `id_roteiro`. Documentation only: the routes take the sources' bodies as they come and validate them by hand.
 */
function WithRoteiro<T extends Type<object>>(Base: T) {
  class SourcesBody extends Base {
    @ApiPropertyOptional(ID_ROTEIRO)
    id_roteiro?: string | number;
  }
  return SourcesBody;
}

export class SourcesImg2VidBodyDto extends WithRoteiro(Img2VidDto) {}
export class SourcesCaptionBodyDto extends WithRoteiro(CaptionDto) {}
/** The caption_style routes set the style themselves. */
export class SourcesCaptionStyleBodyDto extends WithRoteiro(OmitType(CaptionDto, ['style'] as const)) {}
export class SourcesAddAudioBodyDto extends WithRoteiro(AddAudioDto) {}

const WEBHOOK = 'https://example.com/n8n/video-done';

/** Request examples: as the orchestrator's clients send them (with webhook_url) and as the async API's did. */
export const SOURCES_BODY_EXAMPLES = {
  img2vid: {
    orchestrator: {
      summary: 'With webhook_url: 202 at once, the webhook says how it ended',
      value: {
        images: [
          { id: 'scene-1', image_url: 'https://example.com/frames/1.jpg', duracao: 5 },
          { id: 'scene-2', image_url: 'https://example.com/frames/2.jpg', duracao: 3.5 },
        ],
        webhook_url: WEBHOOK,
        id_roteiro: 'roteiro-42',
      },
    },
    sync: {
      summary: 'Without webhook_url: the answer waits for the videos',
      value: { images: [{ id: 'scene-1', image_url: 'https://example.com/frames/1.jpg', duracao: 5 }] },
    },
  },
  caption: {
    classic: {
      summary: 'Burn subtitles in',
      value: {
        url_video: 'https://example.com/video.mp4',
        url_srt: 'https://example.com/video.srt',
        style: 'classic',
        webhook_url: WEBHOOK,
        id_roteiro: 'roteiro-42',
      },
    },
  },
  captionStyle: {
    captions: {
      summary: 'Burn subtitles in, in the route’s style',
      value: {
        url_video: 'https://example.com/video.mp4',
        url_srt: 'https://example.com/video.srt',
        id_roteiro: 'roteiro-42',
      },
    },
  },
  addaudio: {
    music: {
      summary: 'Put a soundtrack under a video',
      value: {
        url_video: 'https://example.com/video.mp4',
        url_audio: 'https://example.com/music.mp3',
        webhook_url: WEBHOOK,
        id_roteiro: 'roteiro-42',
      },
    },
  },
};

export class VideoClipDto {
  @ApiProperty({ description: "The clip's id: the image's id for img2vid", example: 'scene-1' })
  id!: string;

  @ApiProperty({
    description: 'A link to the stored file',
    example: '/files/4f1c2b9e/scene-1.mp4?expires=1764900000&sig=…',
  })
  video_url!: string;

  @ApiProperty({ example: 'scene-1.mp4' })
  filename!: string;
}

export class VideoJobOutputDto {
  @ApiProperty({ type: [VideoClipDto], description: 'One per clip, in input order' })
  videos!: VideoClipDto[];

  @ApiProperty({ example: '2 videos ready' })
  message!: string;
}

class JobTimesDto {
  @ApiProperty({ description: 'Submit → start (or now, while queued), ms', example: 850 })
  delayTime!: number;

  @ApiProperty({ description: 'Start → end (or now, while running), ms; 0 before it starts', example: 41200 })
  executionTime!: number;
}

/** A job as `GET /video/job/{id}` shows it (RunPod's words). */
export class VideoJobDto extends JobTimesDto {
  @ApiProperty({ format: 'uuid', example: JOB_ID })
  id!: string;

  @ApiProperty({ enum: JOB_STATUSES, enumName: 'SourcesJobStatus', example: 'COMPLETED' })
  status!: string;

  @ApiProperty({ type: VideoJobOutputDto, nullable: true, description: 'The videos, once COMPLETED' })
  output!: VideoJobOutputDto | null;

  @ApiProperty({ type: String, nullable: true, description: 'Why it failed', example: null })
  error!: string | null;

  @ApiPropertyOptional({ ...ID_ROTEIRO, description: 'As submitted, when it was' })
  id_roteiro?: unknown;
}

/** The synchronous mode's answer once the job has ended: the job, and its id again as `jobId`. */
export class VideoJobFinishedDto extends VideoJobDto {
  @ApiProperty({ format: 'uuid', example: JOB_ID })
  jobId!: string;
}

class JobLinksDto {
  @ApiProperty({ format: 'uuid', example: JOB_ID })
  jobId!: string;

  @ApiProperty({ example: `/video/job/${JOB_ID}` })
  statusUrl!: string;

  @ApiProperty({ example: `/video/job/${JOB_ID}/result` })
  resultUrl!: string;
}

/** The async video API's 202: `…/async`, or a synchronous call whose job still runs when its wait ends. */
export class VideoJobAcceptedDto extends JobLinksDto {
  @ApiProperty({ enum: ['IN_QUEUE'], enumName: 'VideoJobQueuedStatus', example: 'IN_QUEUE' })
  status!: 'IN_QUEUE';

  @ApiProperty({
    description: 'A rough duration: two seconds of work per image, at least a minute',
    example: '~1 minute',
  })
  estimatedTime!: string;

  @ApiProperty({ example: 'Job queued' })
  message!: string;
}

/** The orchestrator's 202: a submit with `webhook_url` on a route without `/async`. */
export class OrchestratorJobAcceptedDto {
  @ApiProperty({ format: 'uuid', example: JOB_ID })
  jobId!: string;

  @ApiProperty({ enum: ['QUEUED'], enumName: 'OrchestratorJobQueuedStatus', example: 'QUEUED' })
  status!: 'QUEUED';

  @ApiProperty({
    description: 'A rough duration: two seconds of work per image, at least a minute',
    example: '~1 minute',
  })
  estimatedTime!: string;

  @ApiProperty({ example: `/jobs/${JOB_ID}` })
  statusUrl!: string;

  @ApiProperty({ example: `/video/job/${JOB_ID}/result` })
  resultUrl!: string;

  @ApiProperty({ example: 'Job queued: the webhook_url is called when it ends' })
  message!: string;
}

/** A job as the orchestrator's `GET /jobs/{id}` shows it. */
export class OrchestratorJobDto extends JobTimesDto {
  @ApiProperty({ format: 'uuid', example: JOB_ID })
  jobId!: string;

  @ApiProperty({ format: 'uuid', description: 'The same as jobId', example: JOB_ID })
  id!: string;

  @ApiProperty({
    enum: ORCHESTRATOR_STATUSES,
    enumName: 'OrchestratorJobStatus',
    description:
      'QUEUED in the platform’s queue; SUBMITTED handed to a provider, no work seen yet; PROCESSING work seen ' +
      'running; then COMPLETED, FAILED or CANCELLED',
    example: 'PROCESSING',
  })
  status!: string;

  @ApiProperty({ description: 'Share of the work done, 0–100 (100 only once completed)', example: 40 })
  progress!: number;

  @ApiProperty({ format: 'date-time', example: '2026-12-04T10:00:00.000Z' })
  createdAt!: string;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: '2026-12-04T10:00:01.000Z' })
  startedAt!: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: null })
  completedAt!: string | null;

  @ApiProperty({ type: VideoJobOutputDto, nullable: true, description: 'The videos, once COMPLETED' })
  result!: VideoJobOutputDto | null;

  @ApiProperty({ type: String, nullable: true, description: 'Why it failed', example: null })
  error!: string | null;

  @ApiPropertyOptional({ ...ID_ROTEIRO, description: 'As submitted, when it was' })
  id_roteiro?: unknown;
}

/** `GET /video/job/{id}/result` while the job runs (202). */
export class VideoJobPendingDto extends JobLinksDto {
  @ApiProperty({ enum: ['IN_QUEUE', 'IN_PROGRESS'], enumName: 'VideoJobRunningStatus', example: 'IN_PROGRESS' })
  status!: string;

  @ApiProperty({ example: 'Job not finished yet' })
  message!: string;
}

/** `GET /video/job/{id}/result` once the job has ended (200). */
export class VideoJobResultDto extends JobTimesDto {
  @ApiProperty({ format: 'uuid', example: JOB_ID })
  jobId!: string;

  @ApiProperty({ enum: ['COMPLETED', 'FAILED', 'CANCELLED'], enumName: 'VideoJobEndStatus', example: 'COMPLETED' })
  status!: string;

  @ApiProperty({ type: VideoJobOutputDto, nullable: true, description: 'The videos, once COMPLETED' })
  result!: VideoJobOutputDto | null;

  @ApiProperty({ type: String, nullable: true, description: 'Why it failed', example: null })
  error!: string | null;
}

export class VideoJobCancelledDto {
  @ApiProperty({ format: 'uuid', example: JOB_ID })
  jobId!: string;

  @ApiProperty({ enum: JOB_STATUSES, enumName: 'SourcesJobStatus', example: 'CANCELLED' })
  status!: string;

  @ApiProperty({ example: 'Job cancelled' })
  message!: string;
}
