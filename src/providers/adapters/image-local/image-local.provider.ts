import { Injectable, Optional } from '@nestjs/common';
import { StoredMedia } from '../../stored-media';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FieldProblem } from '../../../common/domain-exception';
import { AppConfig } from '../../../config/app-config';
import { mediaUrlGuard } from '../../../security/security.module';
import { MediaUrlGuard } from '../../../security/url-guard';
import { IMAGE_EDIT_DEFAULTS } from '../../../tasks/dto/image-edit.dto';
import { TaskRequest } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { CpuSlots } from '../../cpu-slots';
import { downloadMedia } from '../../media-download';
import {
  fieldProblem,
  MediaProvider,
  ProviderContext,
  ProviderError,
  ProviderErrorCode,
  StartOutcome,
} from '../../provider.port';
import { colourMatch, EncodedImage, enhance, ImageInputError, ImageLimits, probeImage, stencil } from './image-ops';

/** Bytes an input image may have once downloaded or decoded from its data: URL. */
export const MAX_IMAGE_BYTES = 25 * 1024 * 1024;
/** 40 megapixels in, 64 out: enough for photos, far from what would exhaust a worker's memory. */
export const IMAGE_LIMITS: ImageLimits = { inputPixels: 40_000_000, outputPixels: 64_000_000 };
const DOWNLOAD_TIMEOUT_MS = 60_000;

const CONTENT_TYPE = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' } as const;

/**
 * The image operations that need no model — stencil, enhance and color_match — run on the worker's own CPU with
 * sharp (libvips): deterministic, free and fast, so routing prefers it for them (quality 0.9, no cost, and the
 * latency of a local call). `generate` is refused by validate(), so routing never picks it for that.
 */
@Injectable()
export class ImageLocalProvider extends MediaProvider<TaskType.ImageEdit> {
  readonly name = 'image-local';
  readonly taskTypes = [TaskType.ImageEdit] as const;
  override readonly qualityScore = 0.9;
  override readonly costModel = 'free (the worker’s own CPU)';

  /** Free and on the worker: the default for the operations it runs, remote vendors only as fallbacks. */
  override isDefaultFor(): boolean {
    return true;
  }

  constructor(
    private readonly config: AppConfig,
    @Optional() private readonly guard: MediaUrlGuard = mediaUrlGuard(config),
    @Optional() private readonly limits: ImageLimits = IMAGE_LIMITS,
    // upload:<id> inputs are read from storage.
    @Optional() private readonly uploads?: StoredMedia,
    @Optional() private readonly cpu: CpuSlots = new CpuSlots(config.localCpuConcurrency),
  ) {
    super();
  }

  isConfigured(): boolean {
    return true;
  }

  override validate(task: TaskRequest<TaskType.ImageEdit>): FieldProblem[] {
    if (task.input.operation === 'generate') {
      return [
        fieldProblem('operation', `${this.name} does not generate images (it runs stencil, enhance, color_match)`),
      ];
    }
    return [];
  }

  async start(ctx: ProviderContext<TaskType.ImageEdit>): Promise<StartOutcome> {
    this.assertValid(ctx, ProviderErrorCode.InvalidRequest);
    const { input, signal, reportProgress } = ctx;
    const format = input.output_format ?? IMAGE_EDIT_DEFAULTS.outputFormat;
    const dir = await mkdtemp(join(tmpdir(), 'media-image-'));
    try {
      reportProgress(0.01);
      const source = await this.fetchImage(input.image_url!, join(dir, 'image'), 'image_url', signal);
      let out: EncodedImage;
      switch (input.operation) {
        case 'stencil':
          out = await this.compute(signal, () =>
            stencil(
              source,
              {
                style: input.style ?? IMAGE_EDIT_DEFAULTS.style,
                thickness: input.thickness ?? IMAGE_EDIT_DEFAULTS.thickness,
                threshold: input.threshold ?? IMAGE_EDIT_DEFAULTS.threshold,
                detail: input.detail ?? IMAGE_EDIT_DEFAULTS.detail,
                background: input.background ?? IMAGE_EDIT_DEFAULTS.background,
              },
              format,
              this.limits,
            ),
          );
          break;
        case 'enhance':
          out = await this.compute(signal, () =>
            enhance(
              source,
              {
                scale: input.scale ?? IMAGE_EDIT_DEFAULTS.scale,
                strength: input.strength ?? IMAGE_EDIT_DEFAULTS.enhanceStrength,
              },
              format,
              this.limits,
            ),
          );
          break;
        case 'color_match': {
          const target = input.reference_url
            ? { reference: await this.fetchImage(input.reference_url, join(dir, 'reference'), 'reference_url', signal) }
            : { palette: input.palette ?? [] };
          reportProgress(0.3);
          out = await this.compute(signal, () =>
            colourMatch(source, target, input.strength ?? IMAGE_EDIT_DEFAULTS.colorStrength, format, this.limits),
          );
          break;
        }
        case 'generate':
          throw ProviderError.permanent(ProviderErrorCode.InvalidRequest, `${this.name} does not generate images`);
      }
      signal.throwIfAborted();
      return {
        kind: 'completed',
        output: {
          artifacts: [{ contentType: CONTENT_TYPE[format], data: out.data, filename: `${input.operation}.${format}` }],
          data: { width: out.width, height: out.height, format: out.format, operation: input.operation },
        },
        cost: { amount: 0, currency: 'USD' },
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** The image at `ref` (URL, upload or data: URL) in `file`, checked to be a picture sharp can read. */
  private async fetchImage(ref: string, file: string, field: string, signal: AbortSignal): Promise<string> {
    await downloadMedia(ref, file, {
      guard: this.guard,
      uploads: this.uploads,
      maxBytes: MAX_IMAGE_BYTES,
      timeoutMs: DOWNLOAD_TIMEOUT_MS,
      signal,
    });
    signal.throwIfAborted();
    await this.run(() => probeImage(file, this.limits), field);
    return file;
  }

  /**
   * One operation on the process's CPU: it waits for a turn there (CpuSlots), then runs as `run` does; a task stopped
   * while it waits ends with its own reason, not as a bad image.
   */
  private compute<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
    return this.cpu.run(() => this.run(work), signal);
  }

  /** An image sharp cannot read or is too big for is the input's fault: a permanent error naming the field. */
  private async run<T>(work: () => Promise<T>, field = 'image'): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      const tooLarge = err instanceof ImageInputError && err.tooLarge;
      throw ProviderError.permanent(
        tooLarge ? ProviderErrorCode.InputTooLarge : ProviderErrorCode.InputInvalid,
        `${field}: ${(err as Error).message}`.slice(0, 500),
      );
    }
  }
}
