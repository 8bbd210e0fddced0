import { RouteConfig } from '@nestjs/platform-fastify';

/** Route config flag of the routes whose JSON may carry inline images (app.factory.ts raises their body limit). */
export const INLINE_IMAGES_BODY = 'inlineImagesBody';

/**
 * The route's JSON may carry image `data:` URLs: its body limit is IMAGE_INLINE_MAX_BYTES of base64 plus 1 MiB,
 * where every other route keeps 1 MiB.
 */
export function InlineImagesBody(): MethodDecorator {
  return RouteConfig({ [INLINE_IMAGES_BODY]: true });
}
