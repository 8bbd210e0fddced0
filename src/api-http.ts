import fastifyMultipart from '@fastify/multipart';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { SwaggerModule } from '@nestjs/swagger';
import { errorCodes } from 'fastify';
import { AppConfig } from './config/app-config';
import { registerWebConsole } from './console/web-console';
import { registerQueueDashboard } from './dashboard/queue-dashboard';
import { buildOpenApiDocument } from './openapi/openapi-document';
import { UnauthenticatedRateLimit } from './rate-limit/unauthenticated-rate-limit';
import { MULTIPART_BODY } from './uploads/multipart-body';

/**
 * What only a process serving the API adds to the HTTP server: multipart bodies, the unauthenticated rate limit,
 * Swagger, the queue dashboard and the console. app.factory.ts imports this file in APP_ROLE=api and all only, so a
 * worker never loads @fastify/multipart, @nestjs/swagger's document builder, Bull Board or @fastify/static (a worker
 * answers multipart bodies 415 all the same: Fastify has no parser for them).
 */
export function configureApiHttp(app: NestFastifyApplication, config: AppConfig): void {
  const fastify = app.getHttpAdapter().getInstance();
  // Multipart bodies are streamed by the one route marked @MultipartBody() (uploads, UPLOAD_MAX_BYTES per file, never
  // buffered); every other route refuses them as before.
  void fastify.register(fastifyMultipart, {
    limits: { fileSize: config.uploads.maxBytes, files: 1, fields: 10, parts: 20 },
  });
  fastify.addHook('preValidation', async (request) => {
    if (request.isMultipart() && !(request.routeOptions.config as unknown as Record<string, unknown>)[MULTIPART_BODY]) {
      throw new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE('multipart/form-data');
    }
  });
  app.get(UnauthenticatedRateLimit).register(fastify);
  SwaggerModule.setup('docs', app, buildOpenApiDocument(app), { jsonDocumentUrl: 'docs-json' });
  registerQueueDashboard(app, config);
  registerWebConsole(app);
}
