import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { redactUrl } from '../logging/logger.options';
import { DependencyUnavailableException, DomainException, ErrorCode } from './domain-exception';
import { isConnectionError } from './dependency-errors';

const STATUS_BY_CODE: Record<ErrorCode, number> = {
  [ErrorCode.ValidationFailed]: HttpStatus.BAD_REQUEST,
  [ErrorCode.Unauthorized]: HttpStatus.UNAUTHORIZED,
  [ErrorCode.Forbidden]: HttpStatus.FORBIDDEN,
  [ErrorCode.NotFound]: HttpStatus.NOT_FOUND,
  [ErrorCode.Gone]: HttpStatus.GONE,
  [ErrorCode.HookNotFound]: HttpStatus.NOT_FOUND,
  [ErrorCode.InvalidTransition]: HttpStatus.CONFLICT,
  [ErrorCode.TaskNotFinished]: HttpStatus.ACCEPTED,
  [ErrorCode.TaskFailed]: HttpStatus.CONFLICT,
  [ErrorCode.PayloadTooLarge]: HttpStatus.PAYLOAD_TOO_LARGE,
  [ErrorCode.UnsupportedMediaType]: HttpStatus.UNSUPPORTED_MEDIA_TYPE,
  [ErrorCode.DependencyUnavailable]: HttpStatus.SERVICE_UNAVAILABLE,
  [ErrorCode.IdempotencyMismatch]: HttpStatus.UNPROCESSABLE_ENTITY,
  [ErrorCode.Conflict]: HttpStatus.CONFLICT,
  [ErrorCode.RateLimited]: HttpStatus.TOO_MANY_REQUESTS,
  [ErrorCode.QuotaExceeded]: HttpStatus.TOO_MANY_REQUESTS,
  [ErrorCode.InsufficientCredits]: HttpStatus.FORBIDDEN,
  [ErrorCode.Internal]: HttpStatus.INTERNAL_SERVER_ERROR,
};

/** Fastify's own errors (body parsing, size) keep their status but get our body shape and code. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: ErrorCode.PayloadTooLarge,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ErrorCode.UnsupportedMediaType,
  FST_ERR_CTP_INVALID_JSON_BODY: ErrorCode.ValidationFailed,
  FST_ERR_CTP_EMPTY_JSON_BODY: ErrorCode.ValidationFailed,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ErrorCode.ValidationFailed,
};

export interface ErrorBody {
  statusCode: number;
  code: string;
  message: string;
  request_id?: string;
  [extra: string]: unknown;
}

/**
 * The one place errors become HTTP answers: domain codes map to statuses, unreachable dependencies to 503 with
 * Retry-After, and anything unexpected to a 500 that carries an error id (logged with the stack) instead of details.
 */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const reply = ctx.getResponse<FastifyReply>();
    const request = ctx.getRequest<FastifyRequest>();
    const { body, headers } = this.toResponse(exception, request);
    body.request_id = String(request.id);
    for (const [name, value] of Object.entries(headers)) void reply.header(name, value);
    void reply.status(body.statusCode).send(body);
  }

  toResponse(exception: unknown, request?: FastifyRequest): { body: ErrorBody; headers: Record<string, string> } {
    const response = this.map(exception, request);
    // Fastify's parser error reaches us either raw or wrapped by Nest: name the problem the same way both times.
    if (response.body.statusCode === 400 && /not valid JSON/i.test(response.body.message)) {
      response.body.message = `malformed JSON body: ${response.body.message}`;
    }
    return response;
  }

  private map(exception: unknown, request?: FastifyRequest): { body: ErrorBody; headers: Record<string, string> } {
    if (exception instanceof DependencyUnavailableException) {
      return {
        body: { statusCode: 503, code: exception.code, message: exception.message, ...exception.details },
        headers: { 'retry-after': String(exception.retryAfterSeconds) },
      };
    }
    if (exception instanceof DomainException) {
      return {
        body: {
          statusCode: STATUS_BY_CODE[exception.code],
          code: exception.code,
          message: exception.message,
          ...exception.details,
        },
        headers: {},
      };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const response = exception.getResponse();
      const raw = typeof response === 'string' ? response : (response as { message?: unknown }).message;
      const message = Array.isArray(raw) ? raw.join('; ') : typeof raw === 'string' ? raw : exception.message;
      return { body: { statusCode: status, code: this.codeForStatus(status), message }, headers: {} };
    }
    const fastifyCode = (exception as { code?: string })?.code;
    if (fastifyCode && fastifyCode in FASTIFY_CODES) {
      const err = exception as { statusCode?: number; message: string };
      return {
        body: { statusCode: err.statusCode ?? 400, code: FASTIFY_CODES[fastifyCode], message: err.message },
        headers: {},
      };
    }
    const statusCode = (exception as { statusCode?: number })?.statusCode;
    if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
      return {
        body: { statusCode, code: this.codeForStatus(statusCode), message: (exception as Error).message },
        headers: {},
      };
    }
    if (isConnectionError(exception)) {
      this.logger.warn(
        { request_id: request?.id },
        `dependency unreachable on ${request?.method} ${redactUrl(request?.url)}: ${(exception as Error).message}`,
      );
      const dependency = /redis|stream isn't writeable|connection is closed/i.test((exception as Error).message)
        ? 'redis'
        : 'postgres';
      return this.map(new DependencyUnavailableException(dependency), request);
    }
    const errorId = randomUUID();
    this.logger.error(
      { err: exception, errorId, request_id: request?.id, url: redactUrl(request?.url) },
      `unhandled error ${errorId}`,
    );
    return {
      body: { statusCode: 500, code: ErrorCode.Internal, message: 'Internal server error', error_id: errorId },
      headers: {},
    };
  }

  private codeForStatus(status: number): string {
    switch (status) {
      case 400:
        return ErrorCode.ValidationFailed;
      case 401:
        return ErrorCode.Unauthorized;
      case 403:
        return ErrorCode.Forbidden;
      case 404:
        return ErrorCode.NotFound;
      case 413:
        return ErrorCode.PayloadTooLarge;
      case 415:
        return ErrorCode.UnsupportedMediaType;
      case 503:
        return ErrorCode.DependencyUnavailable;
      default:
        return status >= 500 ? ErrorCode.Internal : 'http_error';
    }
  }
}
