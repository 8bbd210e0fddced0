import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharp } from './lazy-sharp';
import { IMAGE_EDIT_DEFAULTS, IMAGE_OUTPUT_FORMATS } from '../tasks/dto/image-edit.dto';
import { DownloadOptions, downloadMedia } from './media-download';
import { ProviderArtifact, ProviderError, ProviderErrorCode } from './provider.port';

export type ImageFormat = (typeof IMAGE_OUTPUT_FORMATS)[number];

const MIME: Record<ImageFormat, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

/** An input image in hand: bytes the remote APIs all read (png, jpeg or webp), and its size. */
export interface ImageBytes {
  /** The image's own field (`image_url`, `reference_urls[1]`), for error messages. */
  field: string;
  data: Buffer;
  format: ImageFormat;
  mimeType: string;
  width: number;
  height: number;
}

/** The image's format and size, or a permanent `input_invalid` naming `field` when it is not an image sharp reads. */
export async function inspectImage(
  data: Buffer,
  field: string,
): Promise<{ format: string; width: number; height: number }> {
  try {
    const meta = await sharp(data).metadata();
    if (!meta.width || !meta.height || !meta.format) throw new Error('no dimensions');
    return { format: meta.format, width: meta.width, height: meta.height };
  } catch {
    throw ProviderError.permanent(ProviderErrorCode.InputInvalid, `${field} is not an image that can be read`);
  }
}

/**
 * Reads each media reference (http(s), `data:` or `upload:`, through `downloadMedia`) into memory as png, jpeg or
 * webp: another format (gif, tiff, avif…) is converted to png, as every vendor here takes those three.
 */
export async function readImages(refs: { field: string; ref: string }[], opts: DownloadOptions): Promise<ImageBytes[]> {
  if (refs.length === 0) return [];
  const dir = await mkdtemp(join(tmpdir(), 'media-image-'));
  try {
    return await Promise.all(
      refs.map(async ({ field, ref }, i) => {
        const media = await downloadMedia(ref, join(dir, `input-${i}`), opts);
        let data = await readFile(media.file);
        const meta = await inspectImage(data, field);
        let format: ImageFormat;
        if (meta.format === 'png' || meta.format === 'jpeg' || meta.format === 'webp') format = meta.format;
        else {
          data = await sharp(data).png().toBuffer();
          format = 'png';
        }
        return { field, data, format, mimeType: MIME[format], width: meta.width, height: meta.height };
      }),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A vendor's image as the task's artifact in the asked format (converted when the vendor answered another), with
 * its size for `task.output`. Bytes that are not an image are the vendor's fault: a transient bad response.
 */
export async function imageArtifact(
  provider: string,
  data: Buffer,
  format: ImageFormat = IMAGE_EDIT_DEFAULTS.outputFormat,
  resize?: { width: number; height: number },
): Promise<{ artifact: ProviderArtifact; width: number; height: number; format: ImageFormat }> {
  let meta;
  try {
    meta = await sharp(data).metadata();
  } catch {
    meta = undefined;
  }
  if (!meta?.width || !meta.height) {
    throw ProviderError.transient(ProviderErrorCode.BadResponse, `${provider} answered an image that cannot be read`);
  }
  let out = data;
  let { width, height } = meta;
  if (resize && (resize.width !== width || resize.height !== height)) {
    out = await sharp(data)
      .resize(resize.width, resize.height, { fit: 'fill', kernel: 'lanczos3' })
      .toFormat(format)
      .toBuffer();
    ({ width, height } = resize);
  } else if (meta.format !== format) {
    out = await sharp(data).toFormat(format).toBuffer();
  }
  return {
    artifact: { contentType: MIME[format], data: out, filename: `image.${format === 'jpeg' ? 'jpg' : format}` },
    width,
    height,
    format,
  };
}
