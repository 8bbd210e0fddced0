import { applyDecorators } from '@nestjs/common';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, isURL, registerDecorator, ValidationOptions } from 'class-validator';
import { outputPrefix } from '../../storage/storage.backend';

/** `model: "best"` on any task: no model pinned, routing chooses (the task's input keeps no `model`). */
export const BEST_MODEL = 'best';

/** The `model` field of a task type with no model to pin: only "best" is taken. */
export function BestModelOnly(): PropertyDecorator {
  return applyDecorators(
    ApiPropertyOptional({
      enum: [BEST_MODEL],
      enumName: 'BestModel',
      description: '"best": let routing choose (the default)',
      example: BEST_MODEL,
    }),
    IsOptional(),
    IsIn([BEST_MODEL], {
      message: `model must be "${BEST_MODEL}" (let routing choose): this task type has no model to pin`,
    }),
  );
}

/** The value, serialised as JSON, is at most `maxBytes` bytes. */
export function MaxJsonBytes(maxBytes: number, options?: ValidationOptions) {
  return (object: object, propertyName: string) =>
    registerDecorator({
      name: 'maxJsonBytes',
      target: object.constructor,
      propertyName,
      options: { message: `${propertyName} must be at most ${maxBytes} bytes as JSON`, ...options },
      validator: {
        validate: (value: unknown) => value === undefined || Buffer.byteLength(JSON.stringify(value)) <= maxBytes,
      },
    });
}

/** A plain JSON object (not an array, not null). */
export function IsPlainObject(options?: ValidationOptions) {
  return (object: object, propertyName: string) =>
    registerDecorator({
      name: 'isPlainObject',
      target: object.constructor,
      propertyName,
      options: { message: `${propertyName} must be a JSON object`, ...options },
      validator: {
        validate: (value: unknown) =>
          typeof value === 'object' &&
          value !== null &&
          !Array.isArray(value) &&
          Object.getPrototypeOf(value) === Object.prototype,
      },
    });
}

/** Media and webhook URLs: absolute http(s) with a host. Address checks happen in the URL guard. */
export const HTTP_URL_OPTIONS = {
  protocols: ['http', 'https'],
  require_protocol: true,
  require_tld: false,
  require_host: true,
  allow_underscores: true,
};

/** A folder for the outputs (`path`): one storage itself takes (see outputPrefix), checked at submit. */
export function IsOutputFolder(options?: ValidationOptions) {
  return (object: object, propertyName: string) =>
    registerDecorator({
      name: 'isOutputFolder',
      target: object.constructor,
      propertyName,
      options: {
        message: `${propertyName} must be a relative folder of segments made of letters, digits, . _ and -, none empty or starting with a dot`,
        ...options,
      },
      validator: { validate: (value: unknown) => typeof value === 'string' && outputPrefix(value) !== null },
    });
}

/** Output file name of the sources' `output_filename`: no traversal. */
export const SAFE_FILENAME = /^(?!.*\.\.)[A-Za-z0-9._-]{1,120}$/;

/** `upload:<id>`: a file the task's owner uploaded (POST /api/v1/media/uploads). */
export const UPLOAD_REFERENCE = /^upload:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** `data:` URL of an image, base64 (its size is checked against IMAGE_INLINE_MAX_BYTES at submit). */
export const IMAGE_DATA_URL = /^data:image\/(png|jpeg|webp|gif);base64,[A-Za-z0-9+/]+={0,2}$/;

/**
 * A media field that takes an http(s) URL (the URL guard checks its address when it is fetched), an `upload:<id>`
 * reference, or, where `inline` says so, an image `data:` URL.
 */
export function IsMediaReference(opts: { inline?: boolean } = {}, options?: ValidationOptions) {
  return (object: object, propertyName: string) =>
    registerDecorator({
      name: 'isMediaReference',
      target: object.constructor,
      propertyName,
      options: {
        message: `${propertyName} must be an http(s) URL, an upload:<id> reference${opts.inline ? ' or a base64 data:image/(png|jpeg|webp|gif) URL' : ''}`,
        ...options,
      },
      validator: {
        validate: (value: unknown) =>
          typeof value === 'string' &&
          ((value.length <= 2048 && isURL(value, HTTP_URL_OPTIONS)) ||
            UPLOAD_REFERENCE.test(value) ||
            (!!opts.inline && IMAGE_DATA_URL.test(value))),
      },
    });
}

/** How far ahead a task may ask to start (`run_at`). */
export const RUN_AT_MAX_DAYS = 30;

/** A time slightly past is taken as "now" (clocks differ, requests take time); further past is a mistake. */
const RUN_AT_PAST_SLACK_MS = 60_000;

/** The problem of a `run_at` value, or null: an ISO 8601 date-time with a zone, not past, at most RUN_AT_MAX_DAYS on. */
export function runAtProblem(value: unknown, now = Date.now()): string | null {
  const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;
  if (typeof value !== 'string' || !iso.test(value) || Number.isNaN(Date.parse(value))) {
    return 'run_at must be an ISO 8601 date-time with a time zone, such as 2030-01-01T09:00:00Z';
  }
  const at = Date.parse(value);
  if (at < now - RUN_AT_PAST_SLACK_MS) return 'run_at is in the past';
  if (at > now + RUN_AT_MAX_DAYS * 86_400_000) return `run_at may be at most ${RUN_AT_MAX_DAYS} days ahead`;
  return null;
}

/** `run_at`: see runAtProblem; the message names the problem. */
export function IsRunAt(options?: ValidationOptions) {
  return (object: object, propertyName: string) =>
    registerDecorator({
      name: 'isRunAt',
      target: object.constructor,
      propertyName,
      options: { message: (args) => runAtProblem(args.value) ?? `${propertyName} is invalid`, ...options },
      validator: { validate: (value: unknown) => runAtProblem(value) === null },
    });
}
