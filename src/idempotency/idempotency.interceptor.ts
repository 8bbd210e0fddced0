import {
  applyDecorators,
  CallHandler,
  ExecutionContext,
  Injectable,
  NestInterceptor,
  UseInterceptors,
} from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { from, Observable, of } from 'rxjs';
import { catchError, mergeMap } from 'rxjs/operators';
import type { AuthUser } from '../auth/auth.types';
import { canonicalJson } from '../common/canonical-json';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { IdempotencyRepository } from './idempotency.repository';

const KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * `Idempotency-Key` on a creating POST (CONTRACT.md, Tasks): per user and key, for 24 hours, the first answer is
 * answered again (with `Idempotent-Replayed: true`) to the same request; the same key with another body is 422, and
 * while the first request is still running, 409. A request that fails frees its key. The key is claimed in Postgres
 * by one statement, so concurrent requests with one key run the work once.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(private readonly keys: IdempotencyRepository) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest & { user?: AuthUser }>();
    const reply = http.getResponse<FastifyReply>();
    const header = request.headers['idempotency-key'];
    if (header === undefined || !request.user) return next.handle();
    const key = Array.isArray(header) ? header[0] : header;
    if (!KEY.test(key)) {
      throw new DomainException(
        ErrorCode.ValidationFailed,
        'Idempotency-Key must be 1 to 255 visible ASCII characters',
      );
    }
    const userId = request.user.id;
    const hash = requestHash(request);
    const claim = await this.keys.claim(userId, key, hash);
    if (claim.kind !== 'claimed' && claim.requestHash !== hash) {
      throw new DomainException(
        ErrorCode.IdempotencyMismatch,
        'this Idempotency-Key was used with another request; use a new key for a new request',
      );
    }
    if (claim.kind === 'in_flight') {
      throw new DomainException(ErrorCode.Conflict, 'a request with this Idempotency-Key is still in progress');
    }
    if (claim.kind === 'done') {
      void reply.status(claim.statusCode).header('idempotent-replayed', 'true');
      return of(claim.response);
    }
    return next.handle().pipe(
      mergeMap((body) => from(this.keys.complete(userId, key, reply.statusCode, body).then(() => body))),
      catchError((err: unknown) =>
        from(
          this.keys
            .release(userId, key)
            .catch(() => undefined)
            .then(() => {
              throw err;
            }),
        ),
      ),
    );
  }
}

/** Marks a creating endpoint as taking `Idempotency-Key`. */
export const Idempotent = () =>
  applyDecorators(
    UseInterceptors(IdempotencyInterceptor),
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description: 'Repeat a request safely for 24 h: the same key and body answer the first response again',
    }),
  );

/** The method, route and body (keys in a fixed order), hashed: what "the same request" means. */
function requestHash(request: FastifyRequest): string {
  return createHash('sha256')
    .update(`${request.method} ${request.routeOptions.url ?? request.url}\n${canonicalJson(request.body)}`)
    .digest('hex');
}
