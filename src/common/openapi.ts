import { applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiProperty, ApiPropertyOptional, ApiResponse, ApiSecurity } from '@nestjs/swagger';
import { ErrorCode } from './domain-exception';

/** The name of the API key scheme in the document (`X-API-Key` header). */
export const API_KEY_SCHEME = 'X-API-Key';
/** The name of the bearer scheme in the document (`Authorization: Bearer <JWT>`). */
export const BEARER_SCHEME = 'bearer';
/** The scoped token of one task's event stream, as `?token=` (POST /api/v1/media/tasks/{id}/events/token). */
export const TASK_EVENTS_TOKEN_SCHEME = 'taskEventsToken';

/** One problem of a refused request: the field (dotted and indexed: `images[2].duracao`) and what is wrong with it. */
export class FieldProblemDto {
  @ApiProperty({ example: 'images[2].duracao' })
  field!: string;

  @ApiProperty({ example: 'images[2].duracao must not be less than 1' })
  message!: string;

  @ApiPropertyOptional({ description: 'The item of a batch the problem is in', example: 0 })
  index?: number;
}

/**
 * The one body of every error answer (src/common/http-exception.filter.ts): the status again, a code to branch on, a
 * message for people, the request's id; 400s list the fields at fault, 503s name the dependency away.
 */
export class ErrorResponseDto {
  @ApiProperty({ example: 400 })
  statusCode!: number;

  @ApiProperty({ enum: ErrorCode, enumName: 'ErrorCode', example: ErrorCode.ValidationFailed })
  code!: ErrorCode;

  @ApiProperty({ example: 'prompt must be a string' })
  message!: string;

  @ApiProperty({ description: 'The id of the request (also the X-Request-Id header)', example: 'req-1a2b' })
  request_id!: string;

  @ApiPropertyOptional({ type: [FieldProblemDto], description: 'The fields at fault (400 validation_failed)' })
  errors?: FieldProblemDto[];

  @ApiPropertyOptional({
    enum: ['postgres', 'redis'],
    enumName: 'Dependency',
    description: 'The dependency that is away (503 dependency_unavailable)',
  })
  dependency?: 'postgres' | 'redis';

  @ApiPropertyOptional({
    description: 'An id to find the logged error by (500 internal_error)',
    format: 'uuid',
    example: '3c9e1f2a-7b6d-4e5f-8a9b-0c1d2e3f4a5b',
  })
  error_id?: string;
}

/** The Retry-After header of 429 and 503 answers. */
export const RETRY_AFTER_HEADER = {
  description: 'Seconds to wait before trying again',
  schema: { type: 'integer', example: 1 },
};
const RETRY_AFTER = { 'Retry-After': RETRY_AFTER_HEADER };

/** The header of an answer given again to a repeated Idempotency-Key (src/idempotency). */
export const IDEMPOTENT_REPLAYED_HEADER = {
  description: 'true when this is the recorded answer to an earlier request with the same Idempotency-Key',
  schema: { type: 'string', enum: ['true'] },
};

/** What each error status means on this API, unless a route says more. */
const DEFAULT_DESCRIPTIONS: Record<number, string> = {
  400: 'A field is missing, of the wrong type, out of range or unknown (`errors` lists them), or the JSON is malformed',
  401: 'Missing, expired or invalid token or API key',
  403: 'Authenticated, but not allowed (an admin route, a scope the API key lacks, or too few credits)',
  404: 'No such resource of yours',
  409: 'The resource is not in a state that allows this',
  413: "The body is over the route's limit",
  415: 'The body is of a media type this route does not take',
  422: 'The same Idempotency-Key was used with another request',
  429: 'Too many requests (RATE_LIMIT_PER_MINUTE) or too many unfinished tasks (QUOTA_MAX_ACTIVE_TASKS)',
  503: 'Postgres or Redis is unavailable',
};

/**
 * Documents the error answers a route can give, each with the one error body, a route-specific description when given
 * (`[status, description]`), and `Retry-After` on 429 and 503.
 */
export function ApiErrors(...statuses: (number | [number, string])[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ...statuses.map((entry) => {
      const [status, description] = Array.isArray(entry) ? entry : [entry, DEFAULT_DESCRIPTIONS[entry]];
      return ApiResponse({
        status,
        description: description ?? `Error ${status}`,
        type: ErrorResponseDto,
        ...(status === 429 || status === 503 ? { headers: RETRY_AFTER } : {}),
      });
    }),
  );
}

/**
 * A controller (or route) for authenticated callers: both schemes (a bearer token or an API key, wherever the key's
 * scopes open the route) and the errors any authenticated route can answer (401, 403 for a key without the route's
 * scope, 429, 503).
 */
export function ApiAuthenticated(): MethodDecorator & ClassDecorator {
  return applyDecorators(ApiBearerAuth(BEARER_SCHEME), ApiSecurity(API_KEY_SCHEME), ApiErrors(401, 403, 429, 503));
}

/**
 * A route for admins only: a bearer token with the admin role (an API key is never an admin), and the errors any
 * such route can answer.
 */
export function ApiAdmin(): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ApiBearerAuth(BEARER_SCHEME),
    ApiErrors(401, [403, 'The token has no admin role (or the caller used an API key)'], 429, 503),
  );
}

/**
 * A route anyone may call. The document requires a bearer token by default; an empty requirement (`security: [{}]`)
 * says this operation needs none. Its own checks (a signature, a secret in the URL) are in its description.
 */
export function ApiPublic(): MethodDecorator & ClassDecorator {
  return ApiSecurity({});
}

/**
 * A JSON body: 400 naming each bad field (`badRequest` says more when the route checks more), 413 past the body
 * limit, 415 for another media type.
 */
export function ApiJsonBodyErrors(badRequest?: string): MethodDecorator & ClassDecorator {
  return ApiErrors(badRequest ? [400, badRequest] : 400, 413, 415);
}

/** The 400 of a route marked @Idempotent() with a JSON body. */
export const IDEMPOTENT_BAD_REQUEST =
  'A field is missing, of the wrong type, out of range or unknown (`errors` lists them), the JSON is malformed, or ' +
  'the Idempotency-Key is not 1 to 255 visible ASCII characters';

/** A route marked @Idempotent(): a retry with the key of a request under way, or with another body. */
export function ApiIdempotencyErrors(): MethodDecorator & ClassDecorator {
  return ApiErrors(
    [409, 'A request with this Idempotency-Key is still in progress'],
    [422, 'This Idempotency-Key was used with another request'],
  );
}
