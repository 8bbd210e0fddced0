import { applyDecorators, Injectable, Logger } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { canonicalJson } from '../common/canonical-json';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { AppConfig } from '../config/app-config';
import { IdempotencyRepository } from './idempotency.repository';

const KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * `Idempotency-Key` on a creating POST (CONTRACT.md, Tasks): per user and key, for 24 hours, the first answer is
 * answered again (with `Idempotent-Replayed: true`) to the same request; the same key with another body is 422, and
 * while the first request is still running, 409. A request that fails frees its key. The key is claimed in Postgres
 * by one statement, so concurrent requests with one key run the work once. The claim is a lease of
 * IDEMPOTENCY_LEASE_MS that the request renews while it runs (a `Prefer: wait` may last minutes): a request whose
 * process died leaves a key that is free again once the lease lapses. Called by the create handlers around their
 * work (not an interceptor: a route with an interceptor answers through RxJS, which the submit path pays for).
 */
@Injectable()
export class IdempotencyService {
  private readonly logger = new Logger('Idempotency');
  private readonly leaseMs: number;

  constructor(
    private readonly keys: IdempotencyRepository,
    config: AppConfig,
  ) {
    this.leaseMs = config.idempotencyLeaseMs;
  }

  async run<T>(request: FastifyRequest, reply: FastifyReply, userId: string, work: () => Promise<T>): Promise<T> {
    const header = request.headers['idempotency-key'];
    if (header === undefined) return work();
    const key = Array.isArray(header) ? header[0] : header;
    if (!KEY.test(key)) {
      throw new DomainException(
        ErrorCode.ValidationFailed,
        'Idempotency-Key must be 1 to 255 visible ASCII characters',
      );
    }
    const hash = requestHash(request);
    const claim = await this.keys.claim(userId, key, hash, this.leaseMs);
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
      return claim.response as T;
    }
    const { token } = claim;
    // Most requests end long before the first renewal; a waiting one renews its lease every third of it.
    const renewal = setInterval(() => {
      this.keys
        .renew(userId, key, token, this.leaseMs)
        .catch((err: Error) => this.logger.warn(`Idempotency-Key lease not renewed: ${err.message}`));
    }, this.leaseMs / 3);
    let body: T;
    try {
      body = await work();
    } catch (err) {
      await this.keys.release(userId, key, token).catch(() => undefined);
      throw err;
    } finally {
      clearInterval(renewal);
    }
    // The work is done (a task exists): its answer goes out even if it cannot be recorded. The key then stays in
    // flight until its lease lapses, and a retry after that is served anew.
    await this.keys.complete(userId, key, token, reply.statusCode, body).catch((err: Error) => {
      this.logger.error(`answer to an Idempotency-Key not recorded: ${err.message}`);
    });
    return body;
  }
}

/** Marks a creating endpoint as taking `Idempotency-Key`. */
export const Idempotent = () =>
  applyDecorators(
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
