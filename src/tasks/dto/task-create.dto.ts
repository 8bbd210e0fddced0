import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { TaskCreateBaseDto } from './task-create-base.dto';
import { BEST_MODEL, BestModelOnly, IsMediaReference, IsOutputFolder, SAFE_FILENAME } from './validators';

const LANGUAGE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

/** Every transcription model some provider runs (OpenAI's, then AssemblyAI's). */
const TRANSCRIPTION_MODELS = [
  'whisper-1',
  'gpt-4o-transcribe',
  'gpt-4o-mini-transcribe',
  'universal-3-pro',
  'universal-2',
];

/** The values of the fields that take one of a list: the DTOs validate against them, and the input types use them. */
export const IMAGE_STYLES = ['realistic', 'artistic', 'anime'] as const;
export const IMAGE_SIZES = ['512x512', '1024x1024', '1024x1792'] as const;
export const IMAGE_QUALITIES = ['standard', 'hd'] as const;
export const VIDEO_RESOLUTIONS = ['720p', '1080p', '4k'] as const;
export const TRANSCRIPT_FORMATS = ['json', 'text', 'srt', 'vtt', 'verbose_json'] as const;
export const CAPTION_STYLES = ['classic', 'segments', 'highlight'] as const;

export class ImageGenerateDto extends TaskCreateBaseDto {
  @ApiProperty({ example: 'A lighthouse at dawn, watercolour', maxLength: 4000 })
  @IsString()
  @Length(1, 4000)
  prompt: string;

  @ApiPropertyOptional({ enum: [...IMAGE_STYLES], enumName: 'ImageStyle', default: 'realistic', example: 'artistic' })
  @IsOptional()
  @IsIn(IMAGE_STYLES)
  style?: (typeof IMAGE_STYLES)[number] = 'realistic';

  @ApiPropertyOptional({ enum: [...IMAGE_SIZES], enumName: 'ImageSize', default: '1024x1024', example: '1024x1024' })
  @IsOptional()
  @IsIn(IMAGE_SIZES)
  size?: (typeof IMAGE_SIZES)[number] = '1024x1024';

  @ApiPropertyOptional({ enum: [...IMAGE_QUALITIES], enumName: 'ImageQuality', default: 'standard', example: 'hd' })
  @IsOptional()
  @IsIn(IMAGE_QUALITIES)
  quality?: (typeof IMAGE_QUALITIES)[number] = 'standard';

  @ApiPropertyOptional({ description: 'How many images', minimum: 1, maximum: 4, default: 1, example: 2 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(4)
  n?: number = 1;

  @ApiPropertyOptional({
    description:
      'A model of one provider (dall-e-3, dall-e-2, gpt-image-1, sd3.5-large…): routes to the providers that have it; "best" lets routing choose',
    example: 'dall-e-3',
  })
  @IsOptional()
  @Matches(/^[a-z0-9][a-z0-9._-]{0,63}$/, { message: 'model must be a model name such as "dall-e-3"' })
  model?: string;
}

export class VideoGenerateDto extends TaskCreateBaseDto {
  @ApiProperty({ example: 'Waves rolling onto a beach at sunset', maxLength: 2000 })
  @IsString()
  @Length(1, 2000)
  prompt: string;

  @ApiPropertyOptional({
    description: 'Start frame (image-to-video): an http(s) URL or upload:<id>',
    example: 'https://example.com/frames/start.jpg',
  })
  @IsOptional()
  @IsMediaReference()
  @Length(1, 2048)
  image_url?: string;

  @ApiPropertyOptional({ description: 'Seconds', minimum: 1, maximum: 60, default: 5, example: 5 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(60)
  duration?: number = 5;

  @ApiPropertyOptional({ example: 'cinematic', maxLength: 100 })
  @IsOptional()
  @IsString()
  @Length(1, 100)
  style?: string;

  @ApiPropertyOptional({ description: 'Frames per second', minimum: 1, maximum: 60, default: 24, example: 24 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(60)
  fps?: number = 24;

  @ApiPropertyOptional({ enum: [...VIDEO_RESOLUTIONS], enumName: 'VideoResolution', default: '720p', example: '1080p' })
  @IsOptional()
  @IsIn(VIDEO_RESOLUTIONS)
  resolution?: (typeof VIDEO_RESOLUTIONS)[number] = '720p';

  @ApiPropertyOptional({
    description:
      'A model of one provider (gen4.5, gen4_turbo, veo3.1, veo3.1_fast, veo3…): routes to the providers that have ' +
      'it; "best" (or unset): let routing choose',
    example: 'gen4.5',
  })
  @IsOptional()
  @Matches(/^[a-z0-9][a-z0-9._-]{0,63}$/, { message: 'model must be a model name such as "gen4.5"' })
  model?: string;
}

export class AudioTranscribeDto extends TaskCreateBaseDto {
  @ApiProperty({
    description: 'The audio: an http(s) URL or upload:<id>',
    example: 'https://example.com/interview.mp3',
  })
  @IsMediaReference()
  @Length(1, 2048)
  audio_url: string;

  @ApiPropertyOptional({ description: 'ISO-639-1 language of the audio', example: 'en' })
  @IsOptional()
  @Matches(/^[a-z]{2}$/, { message: 'language must be an ISO-639-1 code such as "en"' })
  language?: string;

  @ApiPropertyOptional({
    enum: [...TRANSCRIPTION_MODELS, BEST_MODEL],
    enumName: 'TranscriptionModel',
    example: BEST_MODEL,
    description:
      'A provider\'s model: routes to the provider that has it. Unset or "best": routing chooses, and each provider ' +
      'uses its own default (whisper-1 at OpenAI; universal-3-pro, else universal-2, at AssemblyAI)',
  })
  @IsOptional()
  @IsIn([...TRANSCRIPTION_MODELS, BEST_MODEL])
  model?: string;

  @ApiPropertyOptional({ enum: [...TRANSCRIPT_FORMATS], enumName: 'TranscriptFormat', default: 'json', example: 'srt' })
  @IsOptional()
  @IsIn(TRANSCRIPT_FORMATS)
  response_format?: (typeof TRANSCRIPT_FORMATS)[number] = 'json';

  @ApiPropertyOptional({
    description: 'Who speaks when: utterances by speaker ("A", "B"…) in the output (AssemblyAI)',
    default: false,
    example: true,
  })
  @IsOptional()
  @IsBoolean()
  speaker_labels?: boolean;
}

export class SubtitleSegmentDto {
  @ApiProperty({ description: 'Start, in seconds', example: 0 })
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(360000)
  start: number;

  @ApiProperty({ description: 'End, in seconds', example: 2.5 })
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(360000)
  end: number;

  @ApiProperty({ example: 'Hello there.' })
  @IsString()
  @Length(1, 1000)
  text: string;
}

export class SubtitleGenerateDto extends TaskCreateBaseDto {
  @ApiPropertyOptional({
    description: 'The text to subtitle (required with timing_mode auto)',
    example: 'Welcome to the show. Today we talk about subtitles.',
    maxLength: 100000,
  })
  @ValidateIf((o: SubtitleGenerateDto) => o.timing_mode !== 'manual' || o.text !== undefined)
  @IsString()
  @Length(1, 100000)
  text?: string;

  @ApiPropertyOptional({
    description:
      "BCP-47 language of the subtitles. When it differs from the text's language (source_language, or detected when " +
      'absent) the text is translated cue by cue, timings kept (needs a translating provider: openai-subtitles)',
    example: 'pt',
  })
  @IsOptional()
  @Matches(LANGUAGE, { message: 'target_language must be a language tag such as "en" or "pt-BR"' })
  target_language?: string;

  @ApiPropertyOptional({
    description:
      'BCP-47 language of the text. Equal to target_language (same primary language): the text is only laid out and ' +
      'labelled, never translated',
    example: 'en',
  })
  @IsOptional()
  @Matches(LANGUAGE, { message: 'source_language must be a language tag such as "en" or "pt-BR"' })
  source_language?: string;

  @ApiPropertyOptional({ enum: ['srt', 'vtt', 'ass'], enumName: 'SubtitleFormat', default: 'srt', example: 'srt' })
  @IsOptional()
  @IsIn(['srt', 'vtt', 'ass'])
  format?: 'srt' | 'vtt' | 'ass' = 'srt';

  @ApiPropertyOptional({
    enum: ['auto', 'manual'],
    enumName: 'SubtitleTimingMode',
    default: 'auto',
    description: 'manual: times come from `segments`',
    example: 'auto',
  })
  @IsOptional()
  @IsIn(['auto', 'manual'])
  timing_mode?: 'auto' | 'manual' = 'auto';

  @ApiPropertyOptional({ type: [SubtitleSegmentDto], description: 'Timed segments (required with timing_mode manual)' })
  @ValidateIf((o: SubtitleGenerateDto) => o.timing_mode === 'manual' || o.segments !== undefined)
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(5000)
  @ValidateNested({ each: true })
  @Type(() => SubtitleSegmentDto)
  segments?: SubtitleSegmentDto[];

  @ApiPropertyOptional({ description: 'Characters per line', minimum: 20, maximum: 80, default: 42, example: 42 })
  @IsOptional()
  @IsInt()
  @Min(20)
  @Max(80)
  max_chars_per_line?: number;

  @ApiPropertyOptional({ description: 'Lines per cue', minimum: 1, maximum: 3, default: 2, example: 2 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(3)
  max_lines?: number;

  @ApiPropertyOptional({
    description: 'Reading speed, characters per second',
    minimum: 5,
    maximum: 40,
    default: 17,
    example: 17,
  })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(5)
  @Max(40)
  chars_per_second?: number;

  @BestModelOnly()
  model?: typeof BEST_MODEL;
}

export class Img2VidImageDto {
  @ApiProperty({ example: 'scene-1', description: 'Your id for the clip; numbers are kept as strings' })
  @Transform(({ value }: { value: unknown }) => (typeof value === 'number' ? String(value) : value))
  @IsString()
  @Length(1, 200)
  id: string;

  @ApiProperty({ description: 'The image: an http(s) URL or upload:<id>', example: 'https://example.com/frames/1.jpg' })
  @IsMediaReference()
  @Length(1, 2048)
  image_url: string;

  @ApiProperty({ description: 'Clip length in seconds', example: 5, exclusiveMinimum: true, minimum: 0, maximum: 60 })
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0.1)
  @Max(60)
  duracao: number;
}

export class Img2VidDto extends TaskCreateBaseDto {
  @ApiProperty({ type: [Img2VidImageDto], minItems: 1, maxItems: 500 })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(500)
  @ValidateNested({ each: true })
  @Type(() => Img2VidImageDto)
  images: Img2VidImageDto[];

  @ApiPropertyOptional({ description: 'Folder of the outputs in storage', example: 'campaign/2026' })
  @IsOptional()
  @IsOutputFolder()
  path?: string;

  @BestModelOnly()
  model?: typeof BEST_MODEL;
}

export class CaptionDto extends TaskCreateBaseDto {
  @ApiProperty({ description: 'The video: an http(s) URL or upload:<id>', example: 'https://example.com/video.mp4' })
  @IsMediaReference()
  @Length(1, 2048)
  url_video: string;

  @ApiProperty({
    description: 'The subtitles (SRT): an http(s) URL or upload:<id>',
    example: 'https://example.com/video.srt',
  })
  @IsMediaReference()
  @Length(1, 2048)
  url_srt: string;

  @ApiPropertyOptional({ enum: [...CAPTION_STYLES], enumName: 'CaptionStyle', default: 'classic', example: 'classic' })
  @IsOptional()
  @IsIn(CAPTION_STYLES)
  style?: (typeof CAPTION_STYLES)[number] = 'classic';

  @ApiPropertyOptional({ example: 'campaign/2026' })
  @IsOptional()
  @IsOutputFolder()
  path?: string;

  @ApiPropertyOptional({ example: 'final.mp4' })
  @IsOptional()
  @Matches(SAFE_FILENAME, { message: 'output_filename must be a file name of letters, digits, . _ and -' })
  output_filename?: string;

  @BestModelOnly()
  model?: typeof BEST_MODEL;
}

export class AddAudioDto extends TaskCreateBaseDto {
  @ApiProperty({ description: 'The video: an http(s) URL or upload:<id>', example: 'https://example.com/video.mp4' })
  @IsMediaReference()
  @Length(1, 2048)
  url_video: string;

  @ApiProperty({
    description: 'The audio track: an http(s) URL or upload:<id>',
    example: 'https://example.com/music.mp3',
  })
  @IsMediaReference()
  @Length(1, 2048)
  url_audio: string;

  @ApiPropertyOptional({ example: 'campaign/2026' })
  @IsOptional()
  @IsOutputFolder()
  path?: string;

  @ApiPropertyOptional({ example: 'with-audio.mp4' })
  @IsOptional()
  @Matches(SAFE_FILENAME, { message: 'output_filename must be a file name of letters, digits, . _ and -' })
  output_filename?: string;

  @BestModelOnly()
  model?: typeof BEST_MODEL;
}
