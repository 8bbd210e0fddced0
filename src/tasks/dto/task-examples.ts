import type { ApiParamOptions } from '@nestjs/swagger';
import type { ExampleObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import type { TaskType } from '../task.enums';

/** The `{id}` of the task routes. */
export const TASK_ID_PARAM: ApiParamOptions = {
  name: 'id',
  description: "The task's id (anything else answers 404)",
  schema: { type: 'string', format: 'uuid' },
  example: '9b1c6f1e-3f57-4c43-9d1a-5c2f0e6a7b21',
};

const WEBHOOK = {
  webhook_url: 'https://example.com/hooks/media',
  webhook_secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  webhook_events: ['task.completed', 'task.failed'],
};

/**
 * Bodies of the submit routes, as the document shows them: each valid as it stands (test/openapi.e2e.spec.ts sends
 * them), so no `upload:<id>` here: it would have to be an upload of the caller's.
 */
export const TASK_CREATE_EXAMPLES: Record<TaskType, Record<string, ExampleObject>> = {
  image_generation: {
    minimal: { summary: 'A prompt', value: { prompt: 'a lighthouse at dawn, oil painting' } },
    full: {
      summary: 'Every option, a webhook and metadata',
      value: {
        prompt: 'a lighthouse at dawn, oil painting',
        style: 'artistic',
        size: '1024x1024',
        quality: 'hd',
        n: 2,
        priority: 'high',
        strategy: 'quality',
        metadata: { order: 'A-17' },
        ...WEBHOOK,
      },
    },
  },
  video_generation: {
    minimal: { summary: 'A prompt', value: { prompt: 'waves rolling onto a beach at sunset' } },
    fromImage: {
      summary: 'From a start image',
      value: {
        prompt: 'the camera slowly pulls back',
        image_url: 'https://example.com/frames/start.jpg',
        duration: 5,
        resolution: '1080p',
      },
    },
  },
  audio_transcription: {
    minimal: { summary: 'An audio URL', value: { audio_url: 'https://example.com/audio/interview.mp3' } },
    full: {
      summary: 'Language, format and speakers',
      value: {
        audio_url: 'https://example.com/audio/interview.mp3',
        language: 'en',
        response_format: 'srt',
        speaker_labels: true,
      },
    },
  },
  subtitle_generation: {
    text: {
      summary: 'Timed automatically from text',
      value: { text: 'Hello there. Welcome to the show.', format: 'srt' },
    },
    segments: {
      summary: 'Your own timings',
      value: {
        timing_mode: 'manual',
        format: 'vtt',
        segments: [
          { start: 0, end: 2.5, text: 'Hello there.' },
          { start: 2.5, end: 5, text: 'Welcome to the show.' },
        ],
      },
    },
  },
  img2vid: {
    clips: {
      summary: 'One clip per image',
      value: {
        images: [
          { id: 'a', image_url: 'https://example.com/frames/1.jpg', duracao: 5 },
          { id: 'b', image_url: 'https://example.com/frames/2.jpg', duracao: 3 },
        ],
      },
    },
  },
  caption: {
    burn: {
      summary: 'Burn captions into a video',
      value: {
        url_video: 'https://example.com/video/talk.mp4',
        url_srt: 'https://example.com/video/talk.srt',
        style: 'classic',
      },
    },
  },
  addaudio: {
    mux: {
      summary: 'Mux a track into a video',
      value: { url_video: 'https://example.com/video/clip.mp4', url_audio: 'https://example.com/audio/music.mp3' },
    },
  },
  image_edit: {
    stencil: {
      summary: 'A stencil of a photo',
      value: { operation: 'stencil', image_url: 'https://example.com/photo.jpg' },
    },
    enhance: {
      summary: 'Upscale ×2 (image_url may also be upload:<id> of a file you uploaded)',
      value: { operation: 'enhance', image_url: 'https://example.com/photo.jpg', scale: 2 },
    },
    generate: {
      summary: 'Generate from a prompt and references',
      value: {
        operation: 'generate',
        prompt: 'a koi fish in fine-line style',
        reference_urls: ['https://example.com/refs/koi.jpg'],
      },
    },
  },
};
