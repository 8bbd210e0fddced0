import { ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { INLINE_IMAGES_BODY } from './common/inline-images-body';
import { randomUUID } from 'node:crypto';
import { Logger, PARAMS_PROVIDER_TOKEN, type Params } from 'nestjs-pino';
import type { Logger as Pino } from 'pino';
import { AppExtras, AppModule } from './app.module';
import { HttpExceptionFilter } from './common/http-exception.filter';
import { validationExceptionFactory } from './common/validation';
import { AppConfig } from './config/app-config';
import { registerHookBodies } from './flows/triggers/hook-body';
import { registerRequestLog } from './logging/request-log';

/** The contract's body limit: larger bodies get 413. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,100}$/;

/** Builds the application (not listening yet). */
export async function createApp(config: AppConfig, extras: AppExtras = {}): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config, extras),
    createFastifyAdapter(config.trustProxy),
    {
      bufferLogs: true,
    },
  );
  return configureApp(app, config);
}

/** `trustProxy`: which peers' X-Forwarded-For sets `request.ip` (TRUST_PROXY). */
export function createFastifyAdapter(trustProxy: boolean | string): FastifyAdapter {
  return new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    // Honour a caller's X-Request-Id when it is sane, so logs correlate across services.
    genReqId: (req: { headers: Record<string, string | string[] | undefined> }) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    trustProxy,
  });
}

/** Logger, pipes, filters and hooks (and, serving the API, Swagger and the rest): what main.ts and the tests share. */
export async function configureApp(app: NestFastifyApplication, config: AppConfig): Promise<NestFastifyApplication> {
  app.useLogger(app.get(Logger));
  app.flushLogs();

  const filter = new HttpExceptionFilter();
  app.useGlobalFilters(filter);
  app.useGlobalPipes(
    new ValidationPipe({
      transform: true,
      whitelist: true,
      forbidNonWhitelisted: true,
      exceptionFactory: validationExceptionFactory,
    }),
  );
  const fastify = app.getHttpAdapter().getInstance();
  registerRequestLog(fastify, (app.get<Params>(PARAMS_PROVIDER_TOKEN).pinoHttp as { logger: Pino }).logger);
  // Routes marked @InlineImagesBody() take bodies big enough for IMAGE_INLINE_MAX_BYTES of base64 images; the rest
  // keep BODY_LIMIT_BYTES. Routes are added at init, after this hook.
  fastify.addHook('onRoute', (route) => {
    if ((route.config as Record<string, unknown> | undefined)?.[INLINE_IMAGES_BODY]) {
      route.bodyLimit = config.inlineImagesBodyLimit;
    }
  });
  // The inbound hooks of flows read their bodies themselves: raw bytes for signatures, HOOK_MAX_BYTES, three types.
  registerHookBodies(fastify, config.hooks.maxBytes);
  // Once the server closes, answers still under way end their connection: a kept-alive one would hold the close
  // until its keep-alive timeout (72 s).
  let closing = false;
  fastify.addHook('preClose', async () => {
    closing = true;
  });
  fastify.addHook('onSend', async (request, reply) => {
    void reply.header('x-request-id', request.id);
    if (closing) void reply.header('connection', 'close');
  });
  // SIGTERM and SIGINT are main.ts's (src/shutdown.ts): it bounds the whole shutdown by SHUTDOWN_TIMEOUT_MS.

  // Multipart, Swagger, the dashboard and the console: loaded only where this process serves the API.
  if (config.runsApi) (await import('./api-http')).configureApiHttp(app, config);
  return app;
}
