import { randomBytes } from 'node:crypto';
import { buildCommittedDocument } from '../scripts/openapi';
import { TestApp } from './support/test-app';

type Json = Record<string, any>;

/**
 * openapi.json is built without Postgres or Redis (preview mode): it must be the document a running deployment
 * serves, or `npm run openapi` would commit a document of another API.
 */
describe('the OpenAPI document of a running platform', () => {
  let t: TestApp;

  beforeAll(async () => {
    // As a deployment that sends webhooks has: the examples with a webhook_url need a secret to sign with.
    t = await TestApp.start({ sandbox: true, env: { WEBHOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}` } });
  });
  afterAll(async () => {
    await t.close();
  });

  it('is the document npm run openapi writes (the sandbox routes included, as in PROVIDERS_MODE=sandbox)', async () => {
    const served = await t.request('GET', '/docs-json', { token: null });
    expect(served.status).toBe(200);
    expect(served.body).toEqual(JSON.parse(JSON.stringify(await buildCommittedDocument())));
  });

  it('takes every JSON request example it shows (each as a new request, from an admin)', async () => {
    const document = (await t.request('GET', '/docs-json', { token: null })).body as Json;
    const admin = t.token('root', { admin: true });
    const refused: string[] = [];
    let tried = 0;
    for (const [template, item] of Object.entries(document.paths as Record<string, Json>)) {
      // Path parameters an example can stand on without a resource made first.
      const path = template.replace('{user_id}', 'alice');
      if (path.includes('{')) continue;
      for (const [method, op] of Object.entries(item)) {
        const examples = (op.requestBody?.content?.['application/json']?.examples ?? {}) as Record<string, Json>;
        for (const [name, example] of Object.entries(examples)) {
          tried++;
          const res = await t.request(method.toUpperCase(), path, { token: admin, body: example.value });
          if (res.status >= 400)
            refused.push(`${method.toUpperCase()} ${path} (${name}): ${res.status} ${res.body?.message}`);
        }
      }
    }
    expect(refused).toEqual([]);
    expect(tried).toBeGreaterThan(15);
  });
});
