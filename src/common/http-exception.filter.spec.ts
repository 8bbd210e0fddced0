import { Logger } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { HttpExceptionFilter } from './http-exception.filter';

/**
 * Lines written while a request is handled carry its id only where they name it (no logger is bound to the request):
 * the filter's own lines do, so an error body's request_id finds them.
 */
describe('HttpExceptionFilter logs', () => {
  const request = { id: 'req-7', method: 'GET', url: '/api/v1/media/tasks/x/events?token=secret' } as FastifyRequest;
  afterEach(() => jest.restoreAllMocks());

  it('names the request id and masks the URL of an unhandled error, which answers 500 with an error id', () => {
    const error = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const { body } = new HttpExceptionFilter().toResponse(new Error('boom'), request);
    expect(body).toMatchObject({ statusCode: 500, code: 'internal_error', error_id: expect.any(String) });
    expect(error).toHaveBeenCalledWith(
      expect.objectContaining({
        request_id: 'req-7',
        errorId: body.error_id,
        url: '/api/v1/media/tasks/x/events?token=[redacted]',
      }),
      `unhandled error ${String(body.error_id)}`,
    );
  });

  it('names the request id when a dependency is unreachable, which answers 503', () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const { body, headers } = new HttpExceptionFilter().toResponse(refused, request);
    expect(body.statusCode).toBe(503);
    expect(headers['retry-after']).toEqual(expect.any(String));
    expect(warn).toHaveBeenCalledWith({ request_id: 'req-7' }, expect.stringContaining('dependency unreachable'));
    expect(JSON.stringify(warn.mock.calls)).not.toContain('secret');
  });
});
