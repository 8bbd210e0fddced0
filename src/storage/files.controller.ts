import { Controller, Get, Req, Res } from '@nestjs/common';
import { ApiExcludeEndpoint, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import { Public } from '../auth/auth.decorators';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { RETRY_AFTER_HEADER } from '../common/openapi';
import { AppConfig } from '../config/app-config';
import { signFileKey } from './local-storage.backend';
import { cleanContentType, DEFAULT_CONTENT_TYPE, isValidKey } from './storage.backend';
import { StorageService } from './storage.service';

export type FileRequestVerdict =
  | { ok: true; maxAgeSeconds: number }
  | { ok: false; status: 403 | 404; message: 'link expired' | 'bad signature' | 'file not found' };

/**
 * The whole access check of a local file URL: a key we could have generated (else 404: traversal and absolute paths
 * never reach the disk), an authentic signature (checked before the expiry, so a forged link never learns more than
 * "bad signature"), and an expiry not yet past. A valid link whose file is gone then answers 410.
 */
export function verifyFileRequest(
  key: string,
  expires: unknown,
  sig: unknown,
  secret: string,
  nowMs = Date.now(),
): FileRequestVerdict {
  if (!isValidKey(key)) return { ok: false, status: 404, message: 'file not found' };
  if (typeof expires !== 'string' || !/^\d{1,12}$/.test(expires) || typeof sig !== 'string') {
    return { ok: false, status: 403, message: 'bad signature' };
  }
  const expected = Buffer.from(signFileKey(secret, key, expires));
  const given = Buffer.from(sig);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, status: 403, message: 'bad signature' };
  }
  const remaining = Number(expires) - Math.floor(nowMs / 1000);
  if (remaining < 0) return { ok: false, status: 403, message: 'link expired' };
  return { ok: true, maxAgeSeconds: remaining };
}

/** The wildcard parameter as a key: routers give it as one string or as its segments. */
export function keyFromParam(param: unknown): string {
  if (Array.isArray(param)) return param.map(String).join('/');
  return typeof param === 'string' ? param : '';
}

/** Types a browser may render inline from our origin; anything else (HTML, SVG…) is sent as an attachment. */
const INLINE_TYPES =
  /^(image\/(png|jpeg|gif|webp|avif)|video\/[a-z0-9.+-]+|audio\/[a-z0-9.+-]+|text\/plain|text\/vtt|application\/(json|pdf|x-subrip))(;|$)/;

/**
 * GET /files/{key}, by hand: the route is Fastify's bare `*` wildcard, which the document cannot express (buildOpenApiDocument
 * adds this item).
 */
export const FILES_PATH_ITEM = {
  '/files/{key}': {
    get: {
      operationId: 'getFile',
      summary: 'A file of the local storage, through the signed, expiring link a task output gives',
      description:
        'No token: the link is the credential. Output URLs (OUTPUT_STORAGE=local) carry `expires` and `sig`; pass them ' +
        'as given. Types a browser could run (HTML, SVG…) are sent as attachments.',
      tags: ['files'],
      security: [],
      parameters: [
        {
          name: 'key',
          in: 'path',
          required: true,
          description: 'The storage key (may hold slashes)',
          schema: { type: 'string' },
          example: 'outputs/9b1c6f1e/subtitles.srt',
        },
        {
          name: 'expires',
          in: 'query',
          required: true,
          description: 'Unix seconds after which the link stops working',
          schema: { type: 'string', pattern: '^\\d{1,12}$' },
          example: '1764850000',
        },
        {
          name: 'sig',
          in: 'query',
          required: true,
          description: 'The signature of the key and expiry',
          schema: { type: 'string' },
          example: 'q7Jb2…',
        },
      ],
      responses: {
        '200': {
          description: 'The file, with its content type, Content-Length and a private Cache-Control up to the expiry',
          content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
        },
        '403': errorResponse('Bad signature, or the link has expired'),
        '404': errorResponse('A key that could not be a file'),
        '410': errorResponse('The file was deleted: past OUTPUT_RETENTION_DAYS, or its upload was deleted'),
        '429': errorResponse('Too many requests from this address (RATE_LIMIT_PER_MINUTE)', true),
      },
    },
  },
};

function errorResponse(description: string, retryAfter = false) {
  return {
    description,
    ...(retryAfter ? { headers: { 'Retry-After': RETRY_AFTER_HEADER } } : {}),
    content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponseDto' } } },
  };
}

/**
 * Serves the local backend's files through signed, expiring links (no bearer token: the link is the credential).
 * Fastify's router only knows the bare `*` wildcard (find-my-way refuses `*path`), so the route is `*` and the key is
 * the `*` parameter.
 */
@ApiTags('files')
@Public()
@Controller('files')
export class FilesController {
  private readonly secret: string;

  constructor(
    private readonly storage: StorageService,
    config: AppConfig,
  ) {
    this.secret = config.storage.signingSecret;
  }

  @Get('*')
  @ApiExcludeEndpoint()
  async serve(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const params = request.params as Record<string, unknown>;
    const query = request.query as Record<string, unknown>;
    const key = keyFromParam(params['*'] ?? params.path);
    const verdict = verifyFileRequest(key, query.expires, query.sig, this.secret);
    if (!verdict.ok) {
      throw new DomainException(verdict.status === 403 ? ErrorCode.Forbidden : ErrorCode.NotFound, verdict.message);
    }
    // We signed this key, so the file existed: gone now (retention, a deleted upload) rather than never there.
    const file = await this.storage.read(key).catch((err: unknown) => {
      if (err instanceof DomainException && err.code === ErrorCode.NotFound) {
        throw new DomainException(ErrorCode.Gone, 'file expired or deleted');
      }
      throw err;
    });
    const contentType = cleanContentType(file.contentType) ?? DEFAULT_CONTENT_TYPE;
    void reply
      .status(200)
      .header('content-type', contentType)
      .header('content-length', String(file.size))
      .header('cache-control', `private, max-age=${verdict.maxAgeSeconds}`)
      .header('x-content-type-options', 'nosniff');
    if (!INLINE_TYPES.test(contentType)) void reply.header('content-disposition', 'attachment');
    return reply.send(file.stream);
  }
}
