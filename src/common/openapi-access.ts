import { applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiSecurity } from '@nestjs/swagger';
import { ApiAuthenticated, ApiErrors, BEARER_SCHEME } from './openapi';

/**
 * A route anyone may call. The document requires a bearer token by default; an empty requirement (`security: [{}]`)
 * says this operation needs none. Its own checks (a signature, a secret in the URL) are in its description.
 */
export function ApiPublic(): MethodDecorator & ClassDecorator {
  return ApiSecurity({});
}

/**
 * A user's route: a bearer token or an API key with the scope `tasks` (the default scope), and what any such route
 * can answer besides its own errors (401, 403 for a key without the scope, 429, 503).
 */
export function ApiUserRoute(): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ApiAuthenticated(),
    ApiErrors([403, 'An API key without the scope `tasks`, or a user who is not allowed this']),
  );
}

/**
 * An admins' route: a bearer token with the admin role. An API key authenticates but never opens it (keys are never
 * admins), so the document lists the bearer scheme alone.
 */
export function ApiAdminRoute(): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ApiBearerAuth(BEARER_SCHEME),
    ApiErrors(401, [403, 'Not an admin (API keys never are)'], 429, 503),
  );
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
