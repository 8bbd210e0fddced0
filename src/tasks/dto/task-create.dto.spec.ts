import { ArgumentMetadata, ValidationPipe } from '@nestjs/common';
import { ValidationException } from '../../common/domain-exception';
import { validationExceptionFactory } from '../../common/validation';
import { DTO_BY_TYPE } from './task-dto-by-type';
import { Img2VidDto, ImageGenerateDto, SubtitleGenerateDto, VideoGenerateDto } from './task-create.dto';

const pipe = new ValidationPipe({
  transform: true,
  whitelist: true,
  forbidNonWhitelisted: true,
  exceptionFactory: validationExceptionFactory,
});

async function validate<T>(metatype: new () => T, body: unknown): Promise<T> {
  const metadata: ArgumentMetadata = { type: 'body', metatype };
  return pipe.transform(body, metadata) as Promise<T>;
}

async function fieldsOf(metatype: new () => unknown, body: unknown): Promise<string[]> {
  try {
    await validate(metatype, body);
  } catch (err) {
    if (err instanceof ValidationException) return [...new Set(err.problems.map((p) => p.field))];
    throw err;
  }
  return [];
}

describe('task DTO rules', () => {
  it('fills the defaults of an image request', async () => {
    const dto = await validate(ImageGenerateDto, { prompt: 'a fox' });
    expect(dto).toMatchObject({ prompt: 'a fox', style: 'realistic', size: '1024x1024', quality: 'standard', n: 1 });
  });

  it('names each bad field', async () => {
    expect(await fieldsOf(ImageGenerateDto, { prompt: '', n: 0, quality: 'ultra' })).toEqual(
      expect.arrayContaining(['prompt', 'n', 'quality']),
    );
    expect(await fieldsOf(VideoGenerateDto, { prompt: 'x', resolution: '8k', fps: 1.5 })).toEqual(
      expect.arrayContaining(['resolution', 'fps']),
    );
  });

  it('takes a video model by name, leaving which models exist to the providers', async () => {
    expect(await fieldsOf(VideoGenerateDto, { prompt: 'x', model: 'veo3.1_fast' })).toEqual([]);
    expect(await fieldsOf(VideoGenerateDto, { prompt: 'x', model: 'Veo 3' })).toEqual(['model']);
  });

  it('rejects unknown fields, at the top and nested', async () => {
    expect(await fieldsOf(ImageGenerateDto, { prompt: 'x', extra: 1 })).toEqual(['extra']);
    expect(
      await fieldsOf(Img2VidDto, { images: [{ id: 'a', image_url: 'https://e.com/a.png', duracao: 1, zoom: 2 }] }),
    ).toEqual(['images[0].zoom']);
  });

  it('checks img2vid durations and keeps numeric ids as strings', async () => {
    expect(await fieldsOf(Img2VidDto, { images: [{ id: 1, image_url: 'https://e.com/a.png', duracao: 61 }] })).toEqual([
      'images[0].duracao',
    ]);
    expect(await fieldsOf(Img2VidDto, { images: [] })).toEqual(['images']);
    const dto = await validate(Img2VidDto, { images: [{ id: 7, image_url: 'https://e.com/a.png', duracao: 2.5 }] });
    expect(dto.images[0].id).toBe('7');
  });

  it('needs text in auto timing and segments in manual timing', async () => {
    expect(await fieldsOf(SubtitleGenerateDto, {})).toEqual(['text']);
    expect(await fieldsOf(SubtitleGenerateDto, { timing_mode: 'manual' })).toEqual(['segments']);
    expect(
      await fieldsOf(SubtitleGenerateDto, { timing_mode: 'manual', segments: [{ start: 0, end: 1, text: 'ok' }] }),
    ).toEqual([]);
    expect(await fieldsOf(SubtitleGenerateDto, { text: 'x', target_language: 'english' })).toEqual(['target_language']);
    expect(await fieldsOf(SubtitleGenerateDto, { text: 'x', source_language: 'English' })).toEqual(['source_language']);
    expect(await fieldsOf(SubtitleGenerateDto, { text: 'x', target_language: 'pt-BR', source_language: 'en' })).toEqual(
      [],
    );
  });

  it('only accepts http(s) URLs', async () => {
    expect(await fieldsOf(VideoGenerateDto, { prompt: 'x', image_url: 'javascript:alert(1)' })).toEqual(['image_url']);
    expect(await fieldsOf(VideoGenerateDto, { prompt: 'x', image_url: 'file:///etc/passwd' })).toEqual(['image_url']);
    expect(await fieldsOf(VideoGenerateDto, { prompt: 'x', image_url: 'http://localhost:8080/a.png' })).toEqual([]);
  });

  it('takes model "best" on every task type, and no other model where the type has none to pin', async () => {
    const minimal: Record<string, Record<string, unknown>> = {
      image_generation: { prompt: 'a fox' },
      video_generation: { prompt: 'waves' },
      audio_transcription: { audio_url: 'https://e.com/a.mp3' },
      subtitle_generation: { text: 'Hi.' },
      img2vid: { images: [{ id: 'a', image_url: 'https://e.com/a.png', duracao: 1 }] },
      caption: { url_video: 'https://e.com/v.mp4', url_srt: 'https://e.com/v.srt' },
      addaudio: { url_video: 'https://e.com/v.mp4', url_audio: 'https://e.com/a.mp3' },
      image_edit: { operation: 'enhance', image_url: 'https://e.com/a.png' },
    };
    for (const [type, dto] of Object.entries(DTO_BY_TYPE)) {
      expect([type, await fieldsOf(dto, { ...minimal[type], model: 'best' })]).toEqual([type, []]);
    }
    expect(await fieldsOf(Img2VidDto, { ...minimal.img2vid, model: 'gen-3' })).toEqual(['model']);
    await expect(validate(SubtitleGenerateDto, { ...minimal.subtitle_generation, model: 'gpt' })).rejects.toMatchObject(
      {
        problems: [{ field: 'model', message: expect.stringContaining('"best"') }],
      },
    );
  });
});
