import fastifyStatic from '@fastify/static';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const CONSOLE_PATH = '/console/';

/**
 * What the console's page may do: run its own scripts and styles, talk to this origin only, and show outputs wherever
 * storage keeps them (S3, a CDN): images and media may come from anywhere, nothing else may. No framing.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  'img-src * data: blob:',
  'media-src * blob:',
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** The console's build (console/dist), looked for from here up: src/console in development, dist/src/console built. */
export function findConsoleBuild(from = __dirname): string | undefined {
  for (let dir = from, i = 0; i < 5; i++, dir = dirname(dir)) {
    const candidate = join(dir, 'console', 'dist');
    if (existsSync(join(candidate, 'index.html'))) return candidate;
  }
  return undefined;
}

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Console not built</title></head>
<body><h1>The console is not built</h1><p>Run <code>npm run build:console</code> (npm start does it), then reload.</p>
</body></html>`;

/**
 * The web console at /console/: a static page (built by Vite into console/dist) that signs its API calls with the
 * token or key the user gives it. Its files are public, as any page's are; everything it shows comes from the API.
 * Hashed assets are cached for good; the page itself is revalidated, so a new build is picked up at once.
 */
export function registerWebConsole(app: NestFastifyApplication, root = findConsoleBuild()): void {
  const fastify = app.getHttpAdapter().getInstance();
  fastify.get('/console', (_request, reply) => reply.redirect(CONSOLE_PATH));
  if (!root) {
    fastify.get(`${CONSOLE_PATH}*`, (_request, reply) =>
      reply.status(503).header('retry-after', '60').type('text/html; charset=utf-8').send(NOT_BUILT),
    );
    return;
  }
  void fastify.register(fastifyStatic, {
    root,
    prefix: CONSOLE_PATH,
    decorateReply: false,
    index: ['index.html'],
    setHeaders(reply, path) {
      void reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer');
      if (path.endsWith('.html')) {
        void reply
          .header('content-security-policy', CONSOLE_CSP)
          .header('x-frame-options', 'DENY')
          .header('cache-control', 'no-cache');
      } else {
        void reply.header('cache-control', 'public, max-age=31536000, immutable');
      }
    },
  });
}
