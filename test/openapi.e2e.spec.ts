import { createPreviewDocument } from '../src/openapi/openapi-document';
import { TestApp } from './support/test-app';

/**
 * openapi.json is built without Postgres or Redis (preview mode): it must be the document a running deployment
 * serves, or `npm run openapi` would commit a document of another API.
 */
describe('the OpenAPI document of a running platform', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ sandbox: true });
  });
  afterAll(async () => {
    await t.close();
  });

  it('is the document npm run openapi writes (the sandbox routes included, as in PROVIDERS_MODE=sandbox)', async () => {
    const served = await t.request('GET', '/docs-json', { token: null });
    expect(served.status).toBe(200);
    expect(served.body).toEqual(JSON.parse(JSON.stringify(await createPreviewDocument())));
  });
});
