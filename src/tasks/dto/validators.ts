import { applyDecorators } from '@nestjs/common';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, isURL, registerDecorator, ValidationOptions } from 'class-validator';
import { outputPrefix } from '../../storage/storage.backend';

/** `model: "best"` on any task: no model pinned, routing chooses (the task's input keeps no `model`). */
export const BEST_MODEL = 'best';

/** The `model` field of a task type with no model to pin: only "best" is taken. */
export function BestModelOnly(): PropertyDecorator {
  return applyDecorators(
    ApiPropertyOptional({ enum: [BEST_MODEL], description: '"best": let routing choose (the default)' }),
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
