import type SharpFactory from 'sharp';

let loaded: typeof SharpFactory | undefined;

/**
 * sharp (libvips), required on the first image operation rather than at boot: it adds about 20 MiB to a process, and
 * the API role, like a worker that never converts an image, never needs it.
 */
export function sharp(...args: Parameters<typeof SharpFactory>): ReturnType<typeof SharpFactory> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use, see above
  loaded ??= require('sharp') as typeof SharpFactory;
  return loaded(...args);
}
