import type { DynamicModule, INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { DocumentBuilder, getSchemaPath, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { AppModule } from '../app.module';
import { API_KEY_SCHEME, BEARER_SCHEME, TASK_EVENTS_TOKEN_SCHEME } from '../common/openapi';
import { AppConfig } from '../config/app-config';
import { FILES_PATH_ITEM } from '../storage/files.controller';
import { FLOW_EVENT_TYPES } from '../flows/flow-events';
import { TaskEventType } from '../tasks/task.enums';
import {
  BatchCompletedPayloadDto,
  FlowEventPayloadDto,
  SourcesJobPayloadDto,
  TASK_EVENT_EXAMPLE,
  TaskEventPayloadDto,
  WEBHOOK_PAYLOAD_MODELS,
} from './webhook-payloads.dto';

type Json = Record<string, unknown>;

/**
 * The OpenAPI 3.1 document of an application's routes: what /docs-json serves and `npm run openapi` writes. Nest
 * emits 3.0 schemas (`nullable`); they are rewritten as 3.1 types here, and the webhooks this platform sends are
 * added as 3.1 `webhooks`.
 */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setOpenAPIVersion('3.1.0')
      .setTitle('Media task platform')
      .setDescription(
        'Submit AI media work (images, videos, transcripts, subtitles, video edits), get a task id at once, then poll ' +
          'it, stream its events or receive signed webhooks. Authenticate with `Authorization: Bearer <JWT>` or ' +
          '`X-API-Key` (a key acts as its owner on the routes its scopes open).',
      )
      .setVersion('1.0')
      .addServer('/', 'This deployment')
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }, BEARER_SCHEME)
      .addApiKey({ type: 'apiKey', in: 'header', name: 'X-API-Key' }, API_KEY_SCHEME)
      .addApiKey(
        {
          type: 'apiKey',
          in: 'query',
          name: 'token',
          description:
            "A 5-minute token scoped to one task's event stream, from POST /api/v1/media/tasks/{id}/events/token " +
            '(for EventSource, which cannot send headers); it opens nothing else',
        },
        TASK_EVENTS_TOKEN_SCHEME,
      )
      .addSecurityRequirements(BEARER_SCHEME)
      .build(),
    {
      // Operation ids are the handlers' names (`createImageTask`, `getTask`): unique across the API, read as methods.
      operationIdFactory: (_controller, method) => method,
      extraModels: WEBHOOK_PAYLOAD_MODELS,
    },
  );
  const converted = toOpenApi31(document) as OpenAPIObject;
  converted.webhooks = WEBHOOKS;
  Object.assign(converted.paths, FILES_PATH_ITEM);
  return sortDocument(converted);
}

/**
 * The document of the API role built without Postgres, Redis or any provider: Nest's preview mode resolves the
 * modules and their routes but instantiates nothing. `modules`: those the deployment loads besides AppModule's own
 * (scripts/openapi.ts passes the sandbox's; nothing in src/ loads the sandbox).
 */
export async function createPreviewDocument(config: AppConfig, modules: DynamicModule[] = []): Promise<OpenAPIObject> {
  const app = await NestFactory.create(AppModule.forRoot(config, { modules }), new FastifyAdapter(), {
    preview: true,
    logger: false,
    abortOnError: false,
  });
  try {
    return buildOpenApiDocument(app);
  } finally {
    await app.close();
  }
}

/** The document as `openapi.json` holds it: two-space JSON and a trailing newline. */
export function serializeDocument(document: OpenAPIObject): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}

/**
 * 3.0 → 3.1 schemas: `nullable: true` becomes a `null` type (`type: [T, 'null']`, or `anyOf` with `{type: 'null'}`
 * around a reference), as 3.1 has no `nullable`; boolean `exclusiveMinimum`/`exclusiveMaximum` become numbers.
 */
export function toOpenApi31(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toOpenApi31);
  if (!node || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [key, value] of Object.entries(node as Json)) out[key] = toOpenApi31(value);
  // 3.0's boolean exclusive bounds qualify minimum/maximum; 3.1's are the bounds themselves.
  for (const [exclusive, bound] of [
    ['exclusiveMinimum', 'minimum'],
    ['exclusiveMaximum', 'maximum'],
  ] as const) {
    if (typeof out[exclusive] !== 'boolean') continue;
    if (out[exclusive] && typeof out[bound] === 'number') {
      out[exclusive] = out[bound];
      delete out[bound];
    } else delete out[exclusive];
  }
  if (!('nullable' in out)) return out;
  const nullable = out.nullable === true;
  delete out.nullable;
  if (!nullable) return out;
  const ref = typeof out.$ref === 'string' ? out.$ref : singleRef(out.allOf);
  if (ref) {
    const { $ref: _ref, allOf: _allOf, type: _type, ...rest } = out;
    return { ...rest, anyOf: [{ $ref: ref }, { type: 'null' }] };
  }
  if (typeof out.type === 'string') out.type = [out.type, 'null'];
  else if (Array.isArray(out.type) && !out.type.includes('null')) out.type = [...(out.type as string[]), 'null'];
  else if (out.type === undefined) return out; // any JSON value: null already is one
  if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...(out.enum as unknown[]), null];
  return out;
}

function singleRef(allOf: unknown): string | undefined {
  if (!Array.isArray(allOf) || allOf.length !== 1) return undefined;
  const ref = (allOf[0] as Json).$ref;
  return typeof ref === 'string' ? ref : undefined;
}

/** Paths, schemas and webhooks in name order, so the committed file changes only where the API does. */
function sortDocument(document: OpenAPIObject): OpenAPIObject {
  const sorted = <T>(record: Record<string, T> | undefined): Record<string, T> | undefined =>
    record && Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    ...document,
    tags: document.tags && [...document.tags].sort((a, b) => a.name.localeCompare(b.name)),
    paths: sorted(document.paths)!,
    webhooks: sorted(document.webhooks),
    components: { ...document.components, schemas: sorted(document.components?.schemas) },
  };
}

const SIGNATURE_HEADERS = [
  header('webhook-id', 'The delivery id: the same on every attempt and replay; deduplicate on it', 'msg_2b4f…'),
  header('webhook-timestamp', 'Unix seconds of this attempt (Standard Webhooks)', '1764843330'),
  header(
    'webhook-signature',
    'Standard Webhooks: `v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`, keyed by the ' +
      'secret (whsec_ secrets are base64 after the prefix). Absent when the delivery is unsigned',
    'v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=',
    false,
  ),
  header(
    'X-Webhook-Signature',
    '`sha256=<hex HMAC-SHA256 of the body>` with the same key. Absent when the delivery is unsigned',
    'sha256=3f0a…',
    false,
  ),
];

function header(name: string, description: string, example: string, required = true): Json {
  return { name, in: 'header', required, description, schema: { type: 'string' }, example };
}

function eventHeader(values: readonly string[]): Json {
  return {
    name: 'X-Webhook-Event',
    in: 'header',
    required: true,
    description: 'The event type, as in the body',
    schema: { type: 'string', enum: values },
  };
}

const RECEIVER_RESPONSES = {
  '200': { description: 'Received (any 2xx): the delivery is done' },
  '410': { description: 'Gone: the delivery is dead at once, never retried' },
  default: {
    description:
      'Any other status, a timeout or a refused connection: retried with backoff, then dead-lettered (replayable ' +
      'with POST /api/v1/media/webhooks/deliveries/{id}/replay)',
  },
};

function webhook(
  operationId: string,
  summary: string,
  description: string,
  model: new () => unknown,
  events: readonly string[],
  example: unknown,
): Json {
  return {
    post: {
      operationId,
      summary,
      description,
      tags: ['webhooks'],
      parameters: [...SIGNATURE_HEADERS, eventHeader(events)],
      requestBody: {
        required: true,
        content: {
          'application/json': { schema: { $ref: getSchemaPath(model) }, examples: { sent: { value: example } } },
        },
      },
      responses: RECEIVER_RESPONSES,
    },
  };
}

const TASK_EVENTS = Object.values(TaskEventType);
const FLOW_EVENTS = FLOW_EVENT_TYPES;

/** What this platform POSTs to the URLs clients give it. */
const WEBHOOKS: Record<string, Json> = {
  taskEvent: webhook(
    'receiveTaskEvent',
    "A task's event",
    "POSTed to the task's `webhook_url` for each event its `webhook_events` lets through (all when absent), in " +
      'sequence order per task; a delivery is retried until a 2xx. Verify the signature over the exact body bytes.',
    TaskEventPayloadDto,
    TASK_EVENTS,
    TASK_EVENT_EXAMPLE,
  ),
  batchCompleted: webhook(
    'receiveBatchCompleted',
    'A batch has finished',
    "POSTed once to the batch's `webhook_url` when its last task has finished, signed with the batch's secret.",
    BatchCompletedPayloadDto,
    ['batch.completed'],
    {
      event_type: 'batch.completed',
      batch_id: '0f8e2d4c-5b6a-4e3f-9c1d-2a7b8c9d0e1f',
      timestamp: '2026-12-04T10:20:00.000Z',
      data: { total: 10, counts: { queued: 0, processing: 0, completed: 9, failed: 1, cancelled: 0 } },
      user_id: 'alice',
      metadata: { campaign: 'winter' },
    },
  ),
  sourcesJobEvent: webhook(
    'receiveSourcesJobEvent',
    "A sources' video job has changed",
    "Jobs submitted through the sources' video routes (/video/…) get this body instead of the task event's, on the " +
      'same events and with the same headers.',
    SourcesJobPayloadDto,
    TASK_EVENTS,
    {
      jobId: '9b1c6f1e-3f57-4c43-9d1a-5c2f0e6a7b21',
      status: 'COMPLETED',
      result: {
        videos: [{ id: 'a', video_url: '/files/9b1c6f1e/a.mp4', filename: 'a.mp4' }],
        message: '1 video generated',
      },
      error: null,
      id_roteiro: 'roteiro-42',
    },
  ),
  flowEvent: webhook(
    'receiveFlowEvent',
    "A flow run's event",
    "POSTed to the flow's `webhook_url` for each event its `webhook_events` lets through, in order per run, signed " +
      "with the flow's secret.",
    FlowEventPayloadDto,
    FLOW_EVENTS,
    {
      type: 'flow.step.completed',
      timestamp: '2026-12-04T10:15:30.123Z',
      data: {
        run_id: '5d1e2f3a-4b5c-4d6e-8f70-1a2b3c4d5e6f',
        flow_id: '7a8b9c0d-1e2f-4a3b-9c4d-5e6f7a8b9c0d',
        version: 2,
        status: 'running',
        step: {
          id: 'render',
          kind: 'task',
          status: 'completed',
          output: { task_id: '9b1c6f1e-3f57-4c43-9d1a-5c2f0e6a7b21' },
        },
      },
    },
  ),
};
