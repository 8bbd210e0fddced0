import { Injectable, Optional } from '@nestjs/common';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppConfig } from '../../../config/app-config';
import { MediaUrlGuard } from '../../../security/url-guard';
import { mediaUrlGuard } from '../../../security/security.module';
import { TaskInputOf } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { CpuSlots } from '../../cpu-slots';
import { downloadMedia } from '../../media-download';
import { StoredMedia } from '../../stored-media';
import {
  MediaProvider,
  ProviderArtifact,
  ProviderContext,
  ProviderError,
  ProviderErrorCode,
  ProviderOutput,
  StartOutcome,
} from '../../provider.port';
import { CaptionStyle, parseSrt, toAss } from './captions-ass';
import {
  inputArgs,
  INPUT_FORMATS,
  InputKind,
  probe,
  refusedFormat,
  runTool,
  toolAvailable,
  ToolError,
} from './ffmpeg-process';

/** img2vid frame: 720p, 25 frames a second. */
const WIDTH = 1280;
const HEIGHT = 720;
const FPS = 25;
const MAX_IMAGE_BYTES = 25 * 1024 * 1024;
const MAX_MEDIA_BYTES = 512 * 1024 * 1024;
const DOWNLOAD_TIMEOUT_MS = 60_000;
/** The video encoding of every clip made here: H.264, yuv420p (what every player takes), fast preset. */
const H264_OUTPUT = ['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p'];

type FfmpegTypes = TaskType.Img2Vid | TaskType.Caption | TaskType.AddAudio;
/** One image of an img2vid task (Img2VidImageDto). */
type Img2VidImage = TaskInputOf<TaskType.Img2Vid>['images'][number];

/**
 * The ffmpeg arguments of one img2vid clip of exactly `seconds`: scaled and cropped to the 1280x720 frame, zooming in
 * 10 % from the centre over the clip, H.264 yuv420p at 25 fps. Shared with bench/video.ts, whose floor runs the same.
 */
export function img2vidArgs(source: string, target: string, seconds: number): string[] {
  const frames = Math.max(1, Math.round(seconds * FPS));
  const zoomStep = (0.1 / frames).toFixed(6);
  const filter = [
    `scale=${WIDTH * 2}:${HEIGHT * 2}:force_original_aspect_ratio=increase`,
    `crop=${WIDTH * 2}:${HEIGHT * 2}`,
    `zoompan=z='min(zoom+${zoomStep},1.1)':d=1:x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':s=${WIDTH}x${HEIGHT}:fps=${FPS}`,
    'format=yuv420p',
  ].join(',');
  return [
    '-hide_banner',
    '-y',
    ...inputArgs(source, 'image', ['-loop', '1', '-framerate', String(FPS)]),
    '-vf',
    filter,
    '-frames:v',
    String(frames),
    '-r',
    String(FPS),
    ...H264_OUTPUT,
    '-movflags',
    '+faststart',
    target,
  ];
}

/**
 * The video operations on the worker's own CPU with Debian's ffmpeg (ffprobe checks inputs). img2vid: each image
 * becomes one H.264 (yuv420p, 1280x720, 25 fps) clip of exactly `duracao` seconds with a gentle zoom, in input order;
 * caption: the SRT burnt in through ASS (classic, segments or highlight); addaudio: the audio muxed in (AAC).
 * Configured when the ffmpeg and ffprobe binaries run. Each encode takes a turn at the process's CPU (CpuSlots,
 * LOCAL_CPU_CONCURRENCY), however many tasks the worker runs at once.
 */
@Injectable()
export class FfmpegProvider extends MediaProvider<FfmpegTypes> {
  readonly name = 'ffmpeg-local';
  readonly taskTypes = [TaskType.Img2Vid, TaskType.Caption, TaskType.AddAudio] as const;
  override readonly qualityScore = 0.5;
  override readonly costModel = 'free (the worker’s own CPU)';
  private available?: boolean;

  constructor(
    private readonly config: AppConfig,
    @Optional() private readonly guard: MediaUrlGuard = mediaUrlGuard(config),
    // upload:<id> inputs are read from storage.
    @Optional() private readonly uploads?: StoredMedia,
    @Optional() private readonly cpu: CpuSlots = new CpuSlots(config.localCpuConcurrency),
  ) {
    super();
  }

  isConfigured(): boolean {
    this.available ??= toolAvailable(this.config.ffmpeg.ffmpegPath) && toolAvailable(this.config.ffmpeg.ffprobePath);
    return this.available;
  }

  async start(ctx: ProviderContext<FfmpegTypes>): Promise<StartOutcome> {
    switch (ctx.type) {
      case TaskType.Caption:
        return this.caption(ctx);
      case TaskType.AddAudio:
        return this.addAudio(ctx);
      case TaskType.Img2Vid:
        return this.img2vid(ctx);
    }
  }

  private async img2vid({ input, signal, reportProgress }: ProviderContext<TaskType.Img2Vid>): Promise<StartOutcome> {
    const { images } = input;
    return this.withDir('media-img2vid-', async (dir) => {
      const artifacts: ProviderArtifact[] = [];
      const clips: { id: string; duration_s: number }[] = [];
      for (const [index, image] of images.entries()) {
        signal.throwIfAborted();
        // The share of clips made; at least 0.01 once the first one is under way (the job runs).
        reportProgress(Math.max(0.01, index / images.length));
        const source = join(dir, `in-${index}`);
        await downloadMedia(image.image_url, source, {
          guard: this.guard,
          uploads: this.uploads,
          maxBytes: MAX_IMAGE_BYTES,
          timeoutMs: DOWNLOAD_TIMEOUT_MS,
          signal,
        });
        const target = join(dir, `clip-${index}.mp4`);
        await this.checkedRender(source, target, image, index, signal);
        await rm(source, { force: true }); // the clips stay until stored; the inputs need not
        artifacts.push({ contentType: 'video/mp4', file: target, filename: `${image.id}.mp4` });
        clips.push({ id: image.id, duration_s: image.duracao });
      }
      return { artifacts, data: { clips } };
    });
  }

  /** Burns the SRT at `url_srt` into `url_video`, in the asked style (through an ASS script); audio copied. */
  private async caption({ input, signal }: ProviderContext<TaskType.Caption>): Promise<StartOutcome> {
    return this.withDir('media-video-', async (dir) => {
      const video = await this.fetchMedia(input.url_video, join(dir, 'video'), signal);
      const probed = await this.probeVideo(video, 'url_video', signal);
      const srt = await this.fetchMedia(input.url_srt, join(dir, 'subs.srt'), signal);
      let cues;
      try {
        cues = parseSrt(await readFile(srt, 'utf8'));
      } catch (err) {
        throw ProviderError.permanent(ProviderErrorCode.InputInvalid, `url_srt: ${(err as Error).message}`);
      }
      const style: CaptionStyle = input.style ?? 'classic';
      const ass = join(dir, 'subs.ass');
      await writeFile(ass, toAss(cues, style, probed.width, probed.height));
      const target = join(dir, 'out.mp4');
      const audio = probed.hasAudio ? ['-c:a', 'copy'] : [];
      await this.ffmpeg(
        [
          ...inputArgs(video, 'video'),
          '-vf',
          `ass=${ass}`,
          ...H264_OUTPUT,
          ...audio,
          '-movflags',
          '+faststart',
          target,
        ],
        signal,
      );
      return this.single(target, input, 'captioned', { style, cues: cues.length });
    });
  }

  /** Muxes `url_audio` into `url_video`: the video copied, the audio in AAC, the shorter one decides the length. */
  private async addAudio({ input, signal }: ProviderContext<TaskType.AddAudio>): Promise<StartOutcome> {
    return this.withDir('media-video-', async (dir) => {
      const video = await this.fetchMedia(input.url_video, join(dir, 'video'), signal);
      await this.probeVideo(video, 'url_video', signal);
      const audio = await this.fetchMedia(input.url_audio, join(dir, 'audio'), signal);
      const probedAudio = await probe(this.config.ffmpeg.ffprobePath, audio, 'audio', signal).catch((err: unknown) => {
        if (err instanceof ToolError) return refusal(err, 'url_audio', 'audio');
        throw err;
      });
      if (!probedAudio?.streams.some((s) => s.codec_type === 'audio')) {
        throw ProviderError.permanent(ProviderErrorCode.InputInvalid, 'url_audio: no audio stream in it');
      }
      const target = join(dir, 'out.mp4');
      await this.ffmpeg(
        [
          ...inputArgs(video, 'video'),
          ...inputArgs(audio, 'audio'),
          '-map',
          '0:v:0',
          '-map',
          '1:a:0',
          '-c:v',
          'copy',
          '-c:a',
          'aac',
          '-b:a',
          '192k',
          '-shortest',
          '-movflags',
          '+faststart',
          target,
        ],
        signal,
      );
      return this.single(target, input, 'with-audio', {});
    });
  }

  /**
   * Runs `work` in a temp folder of its own. The outputs are files in it, handed over with the folder: it is removed
   * by the output's `release` (once the platform has stored them), or at once if the work fails.
   */
  private async withDir(
    prefix: string,
    work: (dir: string) => Promise<Omit<ProviderOutput, 'release'>>,
  ): Promise<StartOutcome> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    const release = () => rm(dir, { recursive: true, force: true });
    try {
      return { kind: 'completed', output: { ...(await work(dir)), release } };
    } catch (err) {
      await release();
      throw err;
    }
  }

  /** The input at `url`, streamed into `file` (never held in memory). */
  private async fetchMedia(url: string, file: string, signal: AbortSignal): Promise<string> {
    await downloadMedia(url, file, {
      guard: this.guard,
      uploads: this.uploads,
      maxBytes: MAX_MEDIA_BYTES,
      timeoutMs: DOWNLOAD_TIMEOUT_MS,
      signal,
    });
    return file;
  }

  /** A video stream (with its size, and whether there is audio), or `input_invalid` naming the field. */
  private async probeVideo(
    file: string,
    field: string,
    signal: AbortSignal,
  ): Promise<{ width: number; height: number; hasAudio: boolean }> {
    const probed = await probe(this.config.ffmpeg.ffprobePath, file, 'video', signal).catch((err: unknown) => {
      if (err instanceof ToolError) return refusal(err, field, 'video');
      throw err;
    });
    const video = probed?.streams.find((s) => s.codec_type === 'video' && (s.width ?? 0) > 0);
    if (!probed || !video || !Number(probed.format?.duration ?? 0)) {
      throw ProviderError.permanent(ProviderErrorCode.InputInvalid, `${field}: not a video ffprobe can read`);
    }
    return {
      width: video.width!,
      height: video.height!,
      hasAudio: probed.streams.some((s) => s.codec_type === 'audio'),
    };
  }

  private async ffmpeg(args: string[], signal: AbortSignal): Promise<void> {
    try {
      await this.cpu.run(() => runTool(this.config.ffmpeg.ffmpegPath, ['-hide_banner', '-y', ...args], signal), signal);
    } catch (err) {
      if (err instanceof ToolError) {
        throw ProviderError.permanent(ProviderErrorCode.InputInvalid, `the video could not be made: ${err.message}`);
      }
      throw err;
    }
  }

  /** The one output of caption and addaudio, named `output_filename` when given. */
  private single(
    file: string,
    input: TaskInputOf<TaskType.Caption | TaskType.AddAudio>,
    fallback: string,
    data: Record<string, unknown>,
  ): Omit<ProviderOutput, 'release'> {
    const name = input.output_filename ?? fallback;
    const filename = name.toLowerCase().endsWith('.mp4') ? name : `${name}.mp4`;
    return {
      artifacts: [{ contentType: 'video/mp4', file, filename }],
      data: { ...data, clips: [{ id: 'output' }] },
    };
  }

  /** A decodable picture, or a clear `input_invalid` naming the image. */
  private async assertImage(file: string, image: Img2VidImage, index: number, signal: AbortSignal): Promise<void> {
    const invalid = (why: string) =>
      ProviderError.permanent(ProviderErrorCode.InputInvalid, `images[${index}] (${image.id}): ${why}`);
    let probed;
    try {
      probed = await probe(this.config.ffmpeg.ffprobePath, file, 'image', signal);
    } catch (err) {
      if (!(err instanceof ToolError)) throw err;
      const format = refusedFormat(err);
      throw invalid(
        format ? `a ${format} file is not an image (${formatList('image')})` : 'not an image ffprobe can read',
      );
    }
    const picture = probed.streams.find((s) => s.codec_type === 'video' && (s.width ?? 0) > 0);
    if (!picture) throw invalid('not an image (no picture in it)');
  }

  /**
   * ffprobe's check of the image and the clip's encoding run side by side (the check costs a process start, about
   * as long as a short clip's setup): a picture ffprobe refuses stops the encoding and is reported as such, even if
   * ffmpeg failed on it first.
   */
  private async checkedRender(
    source: string,
    target: string,
    image: Img2VidImage,
    index: number,
    signal: AbortSignal,
  ): Promise<void> {
    const encoding = new AbortController();
    const stop = () => encoding.abort(signal.reason);
    signal.addEventListener('abort', stop, { once: true });
    try {
      const [checked, rendered] = await Promise.allSettled([
        this.assertImage(source, image, index, signal).catch((err: unknown) => {
          encoding.abort(err);
          throw err;
        }),
        this.render(source, target, image.duracao, encoding.signal),
      ]);
      if (checked.status === 'rejected') throw checked.reason;
      if (rendered.status === 'rejected') throw rendered.reason;
    } finally {
      signal.removeEventListener('abort', stop);
    }
  }

  /** One clip of exactly `seconds` (see img2vidArgs). */
  private async render(source: string, target: string, seconds: number, signal: AbortSignal): Promise<void> {
    try {
      await this.cpu.run(
        () => runTool(this.config.ffmpeg.ffmpegPath, img2vidArgs(source, target, seconds), signal),
        signal,
      );
    } catch (err) {
      if (err instanceof ToolError) {
        throw ProviderError.permanent(ProviderErrorCode.InputInvalid, `the clip could not be made: ${err.message}`);
      }
      throw err;
    }
  }
}

/** The accepted containers of a kind, for messages: `mov, matroska, …`. */
function formatList(kind: InputKind): string {
  return INPUT_FORMATS[kind].map((f) => f.replace(/_pipe$/, '')).join(', ');
}

/**
 * A probe that failed: `input_invalid` naming the field when the container was refused (a playlist, a concat
 * script…), else null (the caller says what was expected instead).
 */
function refusal(err: ToolError, field: string, kind: InputKind): null {
  const format = refusedFormat(err);
  if (format) {
    throw ProviderError.permanent(
      ProviderErrorCode.InputInvalid,
      `${field}: a ${format} file is not accepted as ${kind} (${formatList(kind)})`,
    );
  }
  return null;
}
