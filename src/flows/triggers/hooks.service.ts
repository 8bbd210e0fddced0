import { Injectable, Logger } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { RateLimiterRes, RateLimiterStoreAbstract } from 'rate-limiter-flexible';
import { ApiKeysService } from '../../api-keys/api-keys.service';
import { DomainException, ErrorCode } from '../../common/domain-exception';
import { AppConfig } from '../../config/app-config';
import { RateLimiters } from '../../rate-limit/rate-limiters';
import { FlowHookDirectory, FlowRunStarter, HookTarget } from '../flow-ports';
import type { HookBody } from './hook-body';
import { verifyHookSignature } from './hook-signature';

type Headers = Record<string, string | string[] | undefined>;

/** The longest sender event id kept as a dedupe key. */
const EVENT_ID_MAX = 200;

export class HookNotFoundException extends DomainException {
  constructor(hookId: string) {
    super(ErrorCode.HookNotFound, `hook ${hookId} not found`);
  }
}

/** What a hook's call answers: the run it started, or the one a repeat of the same event started. */
export interface HookAccepted {
  runId: string;
  created: boolean;
}

/**
 * An inbound hook's request, in order: its flow (404), its rate (HOOK_RATE_PER_MINUTE per hook, 429), its
 * signature (401 naming the header) and key (401/403) when the flow asks for them, then one run started with the
 * sender's event id as dedupe key. Bodies and secrets are never logged.
 */
@Injectable()
export class HooksService {
  private readonly logger = new Logger('Hooks');
  private readonly limiter?: RateLimiterStoreAbstract;

  constructor(
    private readonly directory: FlowHookDirectory,
    private readonly runs: FlowRunStarter,
    private readonly apiKeys: ApiKeysService,
    private readonly jwt: JwtService,
    private readonly config: AppConfig,
    limiters: RateLimiters,
  ) {
    const rate = config.hooks.ratePerMinute;
    if (rate > 0) this.limiter = limiters.perMinute('hook', rate);
  }

  async receive(hookId: string, body: HookBody, headers: Headers): Promise<HookAccepted> {
    const target = await this.directory.find(hookId);
    if (!target) throw new HookNotFoundException(hookId);
    await this.countRequest(hookId);
    if (target.secret) verifyHookSignature(target.secret, body.raw, headers);
    if (target.requireKey) await this.checkOwner(target, headers);
    const eventId = this.eventIdOf(target, headers);
    const started = await this.runs.start({
      flowId: target.flowId,
      trigger: body.value,
      source: 'webhook',
      dedupeKey: eventId === undefined ? undefined : `hook:${eventId}`,
    });
    // The flow was deleted between the lookup and the start.
    if (!started) throw new HookNotFoundException(hookId);
    return started;
  }

  /** 429 with Retry-After past HOOK_RATE_PER_MINUTE; a store that does not answer lets the request through. */
  private async countRequest(hookId: string): Promise<void> {
    if (!this.limiter) return;
    try {
      await this.limiter.consume(hookId);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) {
        this.logger.warn(`hook rate not counted: ${(err as Error).message}`);
        return;
      }
      const retryAfter = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
      throw new HookRateLimitedException(this.config.hooks.ratePerMinute, retryAfter);
    }
  }

  /** The flow's owner only: an API key of theirs (X-API-Key) or a token of theirs (Authorization: Bearer). */
  private async checkOwner(target: HookTarget, headers: Headers): Promise<void> {
    const key = headers['x-api-key'];
    const authorization = typeof headers.authorization === 'string' ? headers.authorization : undefined;
    let owner: string;
    if (key !== undefined) {
      owner = (await this.apiKeys.authenticate(key)).id;
    } else if (authorization) {
      const [scheme, token] = authorization.split(' ');
      if (scheme?.toLowerCase() !== 'bearer' || !token) {
        throw new DomainException(ErrorCode.Unauthorized, 'Authorization header must be "Bearer <token>"');
      }
      let claims: { sub?: unknown; exp?: unknown; scope?: unknown };
      try {
        claims = this.jwt.verify<{ sub?: unknown; exp?: unknown; scope?: unknown }>(token, { algorithms: ['HS256'] });
      } catch {
        throw new DomainException(ErrorCode.Unauthorized, 'invalid token');
      }
      if (typeof claims.exp !== 'number' || typeof claims.sub !== 'string' || claims.scope !== undefined) {
        throw new DomainException(ErrorCode.Unauthorized, 'invalid token');
      }
      owner = claims.sub;
    } else {
      throw new DomainException(
        ErrorCode.Unauthorized,
        "this hook needs the flow owner's API key (X-API-Key) or token (Authorization: Bearer)",
      );
    }
    if (owner !== target.userId) {
      throw new DomainException(ErrorCode.Forbidden, "this hook takes only the flow owner's API key or token");
    }
  }

  /** The sender's event id (`webhook-id`, or the flow's own header), when it sent one that can be kept. */
  private eventIdOf(target: HookTarget, headers: Headers): string | undefined {
    const header = (target.eventIdHeader ?? 'webhook-id').toLowerCase();
    const raw = headers[header];
    const value = (Array.isArray(raw) ? raw[0] : raw)?.trim();
    if (!value) return undefined;
    if (value.length > EVENT_ID_MAX) {
      throw new DomainException(ErrorCode.ValidationFailed, `${header}: at most ${EVENT_ID_MAX} characters`, {
        errors: [{ field: header, message: `${header}: at most ${EVENT_ID_MAX} characters` }],
      });
    }
    return value;
  }
}

/** 429, with the seconds to wait: the controller's filter sets Retry-After from `retry_after_seconds`. */
export class HookRateLimitedException extends DomainException {
  constructor(
    readonly limit: number,
    readonly retryAfterSeconds: number,
  ) {
    super(ErrorCode.RateLimited, `this hook takes ${limit} requests per minute; retry in ${retryAfterSeconds} s`, {
      limit,
      retry_after_seconds: retryAfterSeconds,
    });
  }
}
