import { ApiProperty, ApiPropertyOptional, PickType } from '@nestjs/swagger';
import { ImageEditDto } from '../../tasks/dto/image-edit.dto';
import { IMAGE_APP_KNOBS, IMAGE_APP_QUEUES } from '../image-jobs.mapper';

const JOB_ID = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
const MEDIA = 'http(s) URL, upload:<id>, or data:image/…;base64';

export const IMAGE_APP_QUEUE_NAMES = Object.keys(IMAGE_APP_QUEUES);

/**
 * A body of `POST /api/{queue}/generate-async`, as the image app sends it: its own names for the images and the
 * prompt, and the knobs it shares with `POST /api/v1/media/images/edit`. Documentation only: the route maps the body
 * by hand (imageEditInput) and validates the result as an image_edit task; fields of the app's own are left out.
 */
export class ImageAppJobBodyDto extends PickType(ImageEditDto, IMAGE_APP_KNOBS) {
  @ApiPropertyOptional({
    description: `The image (stencil, enhance, color-match): ${MEDIA}`,
    example: 'https://example.com/photo.jpg',
  })
  image?: string;

  @ApiPropertyOptional({
    description: 'What to make (ia-gen), or guidance for providers that take one',
    example: 'a koi fish',
  })
  prompt?: string;

  @ApiPropertyOptional({ description: 'As prompt, when prompt is absent', example: 'fine lines, no shading' })
  promptDetails?: string;

  @ApiPropertyOptional({
    type: [String],
    description: `ia-gen: reference images (0–4), ${MEDIA}`,
    example: ['https://example.com/ref.jpg'],
  })
  images?: string[];

  @ApiPropertyOptional({
    type: [String],
    description: 'ia-gen: as images, when images is absent',
    example: ['https://example.com/ref.jpg'],
  })
  referenceImages?: string[];

  @ApiPropertyOptional({
    description: `color-match: the image whose colours to take, ${MEDIA}`,
    example: 'https://example.com/ref.jpg',
  })
  referenceImage?: string;
}

export const IMAGE_APP_BODY_EXAMPLES = {
  stencil: {
    summary: 'stencil',
    value: { image: 'https://example.com/photo.jpg', style: 'standard', promptDetails: 'fine lines', thickness: 2 },
  },
  enhance: { summary: 'enhance', value: { image: 'https://example.com/photo.jpg', scale: 2, strength: 0.5 } },
  'ia-gen': {
    summary: 'ia-gen',
    value: { prompt: 'a koi fish in fine-line style', referenceImages: ['https://example.com/ref.jpg'] },
  },
  'color-match': {
    summary: 'color-match',
    value: { image: 'https://example.com/photo.jpg', referenceImage: 'https://example.com/ref.jpg', strength: 1 },
  },
};

export class ImageAppJobQueuedDto {
  @ApiProperty({ type: Boolean, example: true })
  success!: true;

  @ApiProperty({ format: 'uuid', description: 'The job (also /api/v1/media/tasks/{id})', example: JOB_ID })
  jobId!: string;

  @ApiProperty({ example: 'stencil job queued' })
  message!: string;
}

const IMAGE_JOB_STATUSES = ['waiting', 'active', 'completed', 'failed'];

export class ImageAppJobResultDto {
  @ApiProperty({ description: "The output file's URL", example: '/files/9a8b7c6d/output.png?expires=1764900000&sig=…' })
  image!: string;
}

/** A job as the image app's `GET /api/queue/status/{jobId}` shows it. */
export class ImageAppJobDto {
  @ApiProperty({ format: 'uuid', example: JOB_ID })
  jobId!: string;

  @ApiProperty({
    enum: IMAGE_JOB_STATUSES,
    enumName: 'ImageAppJobStatus',
    description: "BullMQ's words: waiting (pending, queued), active, completed, failed (failed or cancelled)",
    example: 'completed',
  })
  status!: string;

  @ApiProperty({ description: '0–100', example: 100 })
  progress!: number;

  @ApiProperty({ type: ImageAppJobResultDto, nullable: true, description: 'Once completed' })
  result!: ImageAppJobResultDto | null;

  @ApiProperty({ type: String, nullable: true, description: 'Why it failed (cancelled: "cancelled")', example: null })
  error!: string | null;
}

export class ImageAppQueueCountsDto {
  @ApiProperty({ example: 3 })
  waiting!: number;
  @ApiProperty({ example: 1 })
  active!: number;
  @ApiProperty({ description: 'In the last 24 h', example: 42 })
  completed!: number;
  @ApiProperty({ description: 'In the last 24 h', example: 2 })
  failed!: number;
}

export class ImageAppQueueStatsDto {
  @ApiProperty({ type: Boolean, example: true })
  success!: true;

  @ApiProperty({
    type: 'object',
    description: `By queue: ${IMAGE_APP_QUEUE_NAMES.join(', ')}`,
    additionalProperties: { $ref: '#/components/schemas/ImageAppQueueCountsDto' },
    example: { stencil: { waiting: 3, active: 1, completed: 42, failed: 2 } },
  })
  data!: Record<string, ImageAppQueueCountsDto>;
}
