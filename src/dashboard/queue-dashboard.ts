import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter as BullBoardAdapter } from '@bull-board/fastify';
import { JwtService } from '@nestjs/jwt';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TokenClaims } from '../auth/auth.types';
import { AppConfig } from '../config/app-config';
import { QueueGateway } from '../queue/queue.gateway';
import {
  ADMIN_SESSION_COOKIE,
  ADMIN_SESSION_TTL_SECONDS,
  AdminSessions,
  crossOriginProblem,
  readCookie,
  sessionCookie,
} from './admin-session';
import { AdminSessionRevocations } from './admin-session-revocations';
import { loginPage } from './login-page';

export const DASHBOARD_PATH = '/admin/queues';
export const LOGIN_PATH = '/admin/login';

const FORM = 'application/x-www-form-urlencoded';

/**
 * Bull Board at /admin/queues, for admins, from a browser. Its routes are plain Fastify routes, out of reach of the
 * Nest JWT guard, so an onRequest hook scoped to the prefix checks a session cookie that /admin/login sets after
 * verifying an admin JWT. A browser cannot send a bearer header on navigation, hence the cookie. Every request that
 * changes something (sign-in and sign-out included) must come from the dashboard's own origin, and logout ends the
 * session on the server, not only in the browser.
 */
export function registerQueueDashboard(app: NestFastifyApplication, config: AppConfig): void {
  const fastify = app.getHttpAdapter().getInstance();
  const jwt = app.get(JwtService);
  const sessions = new AdminSessions(config.jwtSecret);
  const revocations = app.get(AdminSessionRevocations);
  const configuredOrigins = [config.storage.publicBaseUrl, config.publicUrl]
    .filter((url): url is string => !!url)
    .map((url) => new URL(url).origin.toLowerCase());
  const board = new BullBoardAdapter();
  board.setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: app
      .get(QueueGateway)
      .allQueues()
      .map((queue) => new BullMQAdapter(queue)),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'Media tasks' } },
  });

  void fastify.register(
    async (admin: FastifyInstance) => {
      if (!admin.hasContentTypeParser(FORM)) {
        admin.addContentTypeParser(FORM, { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
          done(null, Object.fromEntries(new URLSearchParams(body as string)));
        });
      }

      // Before anything else, sessions included: a cross-origin request is refused whoever sends it.
      admin.addHook('onRequest', async (request, reply) => {
        if (request.method === 'GET' || request.method === 'HEAD' || request.method === 'OPTIONS') return;
        const own = new Set([`${request.protocol}://${request.host}`.toLowerCase(), ...configuredOrigins]);
        const problem = crossOriginProblem(request.headers, own);
        if (problem) return reply.code(403).send({ statusCode: 403, code: 'forbidden', message: problem });
      });

      admin.get('/login', async (_request, reply) => sendPage(reply, 200, loginPage()));

      admin.post('/login', async (request, reply) => {
        const token = (request.body as { token?: unknown } | undefined)?.token;
        const claims = typeof token === 'string' ? verifyToken(jwt, token.trim()) : undefined;
        if (!claims) return sendPage(reply, 401, loginPage('That token is not valid (or has expired).'));
        if (!claims.roles?.includes('admin')) return sendPage(reply, 403, loginPage('That token has no admin role.'));
        const now = Math.floor(Date.now() / 1000);
        const expiresAt = Math.min(now + ADMIN_SESSION_TTL_SECONDS, claims.exp);
        const cookie = sessionCookie(sessions.issue(claims.sub, expiresAt), expiresAt - now, isHttps(request));
        return reply.header('set-cookie', cookie).header('cache-control', 'no-store').redirect(DASHBOARD_PATH, 303);
      });

      admin.post('/logout', async (request, reply) => {
        const session = sessions.verify(readCookie(request.headers.cookie, ADMIN_SESSION_COOKIE));
        // Ended on the server, so a copy of the cookie (a proxy's log, another tab's profile) opens nothing either.
        if (session) await revocations.revoke(session);
        return reply.header('set-cookie', sessionCookie('', 0, isHttps(request))).redirect(LOGIN_PATH, 303);
      });

      await admin.register(async (guarded: FastifyInstance) => {
        guarded.addHook('onRequest', async (request, reply) => {
          const session = sessions.verify(readCookie(request.headers.cookie, ADMIN_SESSION_COOKIE));
          if (session && !(await revocations.isRevoked(session))) return;
          if (request.method === 'GET' || request.method === 'HEAD') return reply.redirect(LOGIN_PATH, 302);
          return reply
            .code(401)
            .send({ statusCode: 401, code: 'unauthorized', message: `no dashboard session: sign in at ${LOGIN_PATH}` });
        });
        await guarded.register(board.registerPlugin(), { prefix: '/queues' });
      });
    },
    { prefix: '/admin' },
  );
}

/** Full-access admin tokens only: scoped tokens (one task's events) open nothing here; nor tokens that never expire. */
function verifyToken(jwt: JwtService, token: string): (TokenClaims & { exp: number }) | undefined {
  try {
    const claims = jwt.verify<TokenClaims>(token, { algorithms: ['HS256'] });
    if (typeof claims.sub !== 'string' || !claims.sub || claims.scope !== undefined) return undefined;
    if (typeof claims.exp !== 'number') return undefined;
    return { ...claims, exp: claims.exp };
  } catch {
    return undefined;
  }
}

function isHttps(request: FastifyRequest): boolean {
  return request.protocol === 'https';
}

function sendPage(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('x-frame-options', 'DENY')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
    .send(html);
}
