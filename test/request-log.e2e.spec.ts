import { AsyncLocalStorage } from 'node:async_hooks';
import { TestApp } from './support/test-app';

/**
 * Serving requests enters no AsyncLocalStorage context: once one has run, Node 20 pays an async hook on every promise
 * of the process for good (the request logger used to enter one per request; it is a Fastify hook now).
 */
describe('requests and AsyncLocalStorage', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ env: { APP_ROLE: 'all' } });
  });
  afterAll(async () => {
    await t.close();
  });

  it('a submit, a read, a refused request and a health check enter no context, and each is answered', async () => {
    const run = jest.spyOn(AsyncLocalStorage.prototype, 'run');
    const enterWith = jest.spyOn(AsyncLocalStorage.prototype, 'enterWith');
    try {
      const submitted = await t.request('POST', '/api/v1/media/subtitles/generate', { body: { text: 'Hello.' } });
      expect(submitted.status).toBe(202);
      const read = await t.request('GET', `/api/v1/media/tasks/${submitted.body.id}`);
      expect(read.status).toBe(200);
      expect(read.headers.get('x-request-id')).toEqual(expect.any(String));
      const refused = await t.request('POST', '/api/v1/media/subtitles/generate', { body: { text: 42 } });
      expect(refused.status).toBe(400);
      expect(refused.body.request_id).toBe(refused.headers.get('x-request-id'));
      expect((await t.request('GET', '/health/live', { token: null })).status).toBe(200);
      expect(run).not.toHaveBeenCalled();
      expect(enterWith).not.toHaveBeenCalled();
    } finally {
      run.mockRestore();
      enterWith.mockRestore();
    }
  });
});
