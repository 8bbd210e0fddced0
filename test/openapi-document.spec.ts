import type { OpenAPIObject } from '@nestjs/swagger';
import { readFileSync } from 'node:fs';
import { buildCommittedDocument, OPENAPI_JSON } from '../scripts/openapi';
import { payloadOf } from '../src/events/event-payload';
import { flowEventBody } from '../src/flows/outbound/flow-webhooks';
import { serializeDocument } from '../src/openapi/openapi-document';
import { sourcesWebhookPayload } from '../src/sources/video-jobs.mapper';
import type { TaskEntity } from '../src/tasks/entities/task.entity';
import { TaskEventType, TaskStatus, TaskType } from '../src/tasks/task.enums';

type Json = Record<string, any>;

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

function operations(document: OpenAPIObject): { name: string; op: Json }[] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item as Json)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, op: op as Json })),
  );
}

/** The media types of a response or body that carry a schema. */
function schemas(content: Json | undefined): unknown[] {
  return Object.values(content ?? {}).map((media) => (media as Json).schema);
}

describe('the OpenAPI document', () => {
  let document: OpenAPIObject;

  beforeAll(async () => {
    document = await buildCommittedDocument();
  });

  it('is the committed openapi.json (run npm run openapi after changing the API)', () => {
    const committed = readFileSync(OPENAPI_JSON, 'utf8');
    // One assertion on the whole text: a mismatch shows the lines that differ.
    if (committed !== serializeDocument(document)) {
      // The code's document as received, the committed one as expected: "+" lines are what npm run openapi would add.
      const hint = 'openapi.json is stale: run npm run openapi and commit it';
      expect({ hint, document: JSON.parse(serializeDocument(document)) as unknown }).toEqual({
        hint,
        document: JSON.parse(committed) as unknown,
      });
      throw new Error(`${hint} (it differs in formatting only)`);
    }
  });

  it('gives every operation an id of its own', () => {
    const seen = new Map<string, string[]>();
    for (const { name, op } of operations(document))
      seen.set(op.operationId, [...(seen.get(op.operationId) ?? []), name]);
    const shared = [...seen].filter(([, names]) => names.length > 1).map(([id, names]) => `${id}: ${names.join(', ')}`);
    expect(shared).toEqual([]);
  });

  it('gives every operation a success answer with its schema (204 has none) and at least one error answer', () => {
    const problems: string[] = [];
    for (const { name, op } of operations(document)) {
      const statuses = Object.keys(op.responses as Json);
      const successes = statuses.filter((s) => /^2/.test(s));
      if (successes.length === 0) problems.push(`${name}: no 2xx answer`);
      for (const status of successes.filter((s) => s !== '204')) {
        const found = schemas(op.responses[status].content);
        if (found.length === 0 || found.some((schema) => !schema)) problems.push(`${name}: ${status} has no schema`);
      }
      if (!statuses.some((s) => /^[45]/.test(s))) problems.push(`${name}: no error answer`);
    }
    expect(problems).toEqual([]);
  });

  it('gives every request body an example', () => {
    const problems: string[] = [];
    for (const { name, op } of operations(document)) {
      const body = op.requestBody as Json | undefined;
      if (!body) continue;
      for (const [type, media] of Object.entries(body.content as Json)) {
        const { example, examples } = media as Json;
        if (example === undefined && Object.keys((examples as Json) ?? {}).length === 0) {
          problems.push(`${name} (${type}): no example`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('documents the webhooks sent, each with its signature headers', () => {
    expect(Object.keys(document.webhooks ?? {}).sort()).toEqual([
      'batchCompleted',
      'flowEvent',
      'sourcesJobEvent',
      'taskEvent',
    ]);
    for (const item of Object.values(document.webhooks ?? {})) {
      const names = ((item as Json).post.parameters as Json[]).map((p) => p.name);
      expect(names).toEqual(
        expect.arrayContaining(['webhook-id', 'webhook-timestamp', 'webhook-signature', 'X-Webhook-Signature']),
      );
    }
  });
});

/**
 * Where `value` strays from `schema` by its keys: a key the schema does not declare, or a required one missing, at any
 * depth (references and null alternatives followed). Enough to tell a documented body from the one the code builds.
 */
function strays(value: unknown, schema: Json, document: OpenAPIObject, at = 'body'): string[] {
  const ref = schema.$ref as string | undefined;
  if (ref) return strays(value, document.components!.schemas![ref.split('/').pop()!], document, at);
  const alternatives = (schema.anyOf ?? schema.oneOf) as Json[] | undefined;
  if (alternatives) {
    const fits = alternatives.map((alternative) => strays(value, alternative, document, at));
    return fits.find((problems) => problems.length === 0) ?? fits.flat();
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || !schema.properties) return [];
  const properties = schema.properties as Json;
  const problems = ((schema.required as string[] | undefined) ?? [])
    .filter((key) => !(key in value))
    .map((key) => `${at}.${key}: required, missing`);
  for (const [key, child] of Object.entries(value)) {
    if (!(key in properties)) problems.push(`${at}.${key}: not documented`);
    else problems.push(...strays(child, properties[key] as Json, document, `${at}.${key}`));
  }
  return problems;
}

describe('the documented webhook bodies', () => {
  let document: OpenAPIObject;
  const task = {
    id: '9b1c6f1e-3f57-4c43-9d1a-5c2f0e6a7b21',
    userId: 'alice',
    type: TaskType.Img2Vid,
    status: TaskStatus.Completed,
    progress: 1,
    output: { files: [{ filename: 'a.mp4', url: '/files/a.mp4' }], clips: [{ id: 'a' }] },
    error: null,
    metadata: { id_roteiro: 'r-1' },
  } as unknown as TaskEntity;
  const bodyOf = (webhook: string) =>
    ((document.webhooks![webhook] as Json).post.requestBody.content['application/json'].schema as Json) ?? {};

  beforeAll(async () => {
    document = await buildCommittedDocument();
  });

  it('are the bodies the code sends', () => {
    const failed = { ...task, status: TaskStatus.Failed, output: null, error: { code: 'timeout', message: 'late' } };
    const run = {
      id: 'r',
      flowId: 'f',
      userId: 'alice',
      version: 1,
      status: 'failed',
      error: { code: 'x', message: 'y' },
    };
    const step = { id: 's', kind: 'task' as const, status: 'completed', output: { n: 1 } };
    const at = new Date();
    expect([
      ...strays(payloadOf(TaskEventType.Completed, task, 4, at), bodyOf('taskEvent'), document),
      ...strays(payloadOf(TaskEventType.Failed, failed as TaskEntity, 5, at), bodyOf('taskEvent'), document),
      ...strays(sourcesWebhookPayload(task), bodyOf('sourcesJobEvent'), document),
      ...strays(sourcesWebhookPayload(failed as TaskEntity), bodyOf('sourcesJobEvent'), document),
      ...strays(flowEventBody('flow.step.completed', run, at, step), bodyOf('flowEvent'), document),
      ...strays(flowEventBody('flow.failed', run, at), bodyOf('flowEvent'), document),
    ]).toEqual([]);
  });

  it('tell a body that strays from them', () => {
    const body = { ...payloadOf(TaskEventType.Completed, task, 4, new Date()), extra: 1 } as Record<string, unknown>;
    delete body.sequence;
    expect(strays(body, bodyOf('taskEvent'), document).sort()).toEqual([
      'body.extra: not documented',
      'body.sequence: required, missing',
    ]);
  });
});
