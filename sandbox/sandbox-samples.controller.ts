import { Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { CurrentUser } from '../src/auth/auth.decorators';
import type { AuthUser } from '../src/auth/auth.types';
import { ApiAuthenticated, ApiErrors } from '../src/common/openapi';
import { UploadResponseDto } from '../src/uploads/dto/upload-response.dto';
import { UploadsService } from '../src/uploads/uploads.service';
import { SAMPLE_KINDS, SampleKind, sampleFiles } from './samples';

const NOT_IN_SANDBOX: [number, string] = [404, 'The providers are live: there are no samples outside the sandbox'];

export class SandboxSamplesDto {
  @ApiProperty({ type: UploadResponseDto, description: 'A 256x256 PNG (image_url of an image edit or an img2vid)' })
  image: UploadResponseDto;

  @ApiProperty({ type: UploadResponseDto, description: 'A 1-second 64x64 H.264 MP4, no sound (url_video)' })
  video: UploadResponseDto;

  @ApiProperty({
    type: UploadResponseDto,
    description: 'A 3-second 16 kHz mono WAV of three tones (audio_url of a transcription, url_audio of an addaudio)',
  })
  audio: UploadResponseDto;

  @ApiProperty({ type: UploadResponseDto, description: 'An SRT of three cues within 3 seconds (url_srt of a caption)' })
  subtitles: UploadResponseDto;
}

export class SandboxSampleKindsDto {
  @ApiProperty({
    enum: SAMPLE_KINDS,
    enumName: 'SandboxSampleKind',
    isArray: true,
    description: 'The files POST /api/v1/sandbox/samples stores',
    example: [...SAMPLE_KINDS],
  })
  kinds: SampleKind[];
}

/**
 * Sample media in the sandbox, so a new user can run every task type before having files of their own. Present only
 * in PROVIDERS_MODE=sandbox: a live deployment answers 404, which is how a client tells the sandbox is on.
 */
@ApiTags('sandbox')
@ApiAuthenticated()
@Controller('api/v1/sandbox/samples')
export class SandboxSamplesController {
  constructor(private readonly uploads: UploadsService) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({
    summary: 'Store sample media as uploads of yours',
    description:
      'An image, a video, an audio file and subtitles, each stored as your upload (new ones on every call, kept ' +
      'UPLOAD_TTL like any upload): put their url (upload:<id>) in the media fields of your tasks. Sandbox only.',
  })
  @ApiCreatedResponse({ type: SandboxSamplesDto, description: 'Stored: one upload of each kind' })
  @ApiErrors(NOT_IN_SANDBOX, [413, 'UPLOAD_MAX_BYTES is smaller than a sample file; nothing is kept of that one'])
  async createSandboxSamples(@CurrentUser() user: AuthUser): Promise<SandboxSamplesDto> {
    const files = sampleFiles();
    const stored = await Promise.all(
      SAMPLE_KINDS.map((kind) => this.uploads.store(user, files[kind].bytes, files[kind].filename)),
    );
    return Object.fromEntries(SAMPLE_KINDS.map((kind, i) => [kind, stored[i]])) as Record<
      SampleKind,
      UploadResponseDto
    >;
  }

  @Get()
  @ApiOperation({
    summary: 'The kinds of sample media the sandbox stores',
    description:
      'Answers 200 only in the sandbox (PROVIDERS_MODE=sandbox, or auto without provider keys); 404 otherwise.',
  })
  @ApiOkResponse({ type: SandboxSampleKindsDto, description: 'The sandbox is on' })
  @ApiErrors(NOT_IN_SANDBOX)
  listSandboxSampleKinds(): SandboxSampleKindsDto {
    return { kinds: [...SAMPLE_KINDS] };
  }
}
