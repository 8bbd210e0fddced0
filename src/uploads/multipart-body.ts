import { RouteConfig } from '@nestjs/platform-fastify';

/** Route config flag of the one route that takes a multipart body (app.factory.ts refuses it everywhere else). */
export const MULTIPART_BODY = 'multipartBody';

/** The route reads a multipart body as a stream (POST /api/v1/media/uploads); no other route takes one. */
export function MultipartBody(): MethodDecorator {
  return RouteConfig({ [MULTIPART_BODY]: true });
}
