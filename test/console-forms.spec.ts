import { join } from 'node:path';
import { taskFormsFromFile } from '../console/task-forms';

/**
 * The console's submit forms come from the committed OpenAPI document (console/task-forms.ts, run by its build):
 * every route that makes a task is a form, with the fields, limits and media inputs the DTOs declare.
 */
describe("the console's forms, read from openapi.json", () => {
  const module = taskFormsFromFile(join(__dirname, '..', 'openapi.json'));
  const form = (type: string) => module.forms.find((f) => f.type === type)!;

  it('has one form per task type, in the order of the TaskType enum', () => {
    expect(module.forms.map((f) => f.type)).toEqual(module.taskTypes);
    expect(module.taskTypes).toEqual(
      expect.arrayContaining(['image_generation', 'subtitle_generation', 'img2vid', 'caption', 'image_edit']),
    );
    expect(form('caption')).toMatchObject({ path: '/api/v1/media/videos/caption', operationId: 'createCaptionTask' });
  });

  it('marks every media input as such, with what the file picker accepts', () => {
    const media = (type: string) =>
      form(type)
        .fields.filter((f) => f.kind === 'media')
        .map((f) => [f.name, f.accept]);
    expect(media('audio_transcription')).toEqual([['audio_url', 'audio/*']]);
    expect(media('caption')).toEqual([
      ['url_video', 'video/*'],
      ['url_srt', '.srt,.vtt,.ass,text/plain'],
    ]);
    expect(media('addaudio')).toEqual([
      ['url_video', 'video/*'],
      ['url_audio', 'audio/*'],
    ]);
    const images = form('img2vid').fields.find((f) => f.name === 'images')!;
    expect(images).toMatchObject({ kind: 'list', required: true, minItems: 1 });
    expect(images.fields!.find((f) => f.name === 'image_url')).toMatchObject({ kind: 'media', accept: 'image/*' });
    // A webhook URL is not media: it gets no upload button.
    expect(form('caption').fields.find((f) => f.name === 'webhook_url')!.kind).toBe('string');
  });

  it('keeps enums, defaults and limits, and sets apart the options every form shares', () => {
    const image = form('image_generation');
    expect(image.fields.find((f) => f.name === 'size')).toMatchObject({ kind: 'enum', default: '1024x1024' });
    expect(image.fields.find((f) => f.name === 'n')).toMatchObject({ kind: 'number', minimum: 1 });
    expect(image.fields.find((f) => f.name === 'webhook_secret')).toMatchObject({ secret: true });
    expect(module.common).toEqual(
      expect.arrayContaining(['priority', 'provider', 'strategy', 'webhook_url', 'metadata']),
    );
    expect(module.common).not.toContain('prompt');
    expect(form('audio_transcription').fields.find((f) => f.name === 'audio_url')).toMatchObject({ required: true });
    expect(form('subtitle_generation').fields.find((f) => f.name === 'segments')).toMatchObject({
      kind: 'list',
      required: false,
    });
  });
});
