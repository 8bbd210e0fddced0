/**
 * The submit forms of the console, read from the platform's OpenAPI document at build time: every operation marked
 * `x-task-type` is a form, and its body schema gives the fields, their kinds, defaults, limits and help. Nothing about
 * a task type is written in the console itself, so a field added to a DTO shows up in the form with the next build.
 */
import { readFileSync } from 'node:fs';
import type { FieldSpec, TaskForm, TaskFormsModule } from './src/forms/spec';

type Schema = Record<string, unknown> & {
  $ref?: string;
  allOf?: Schema[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  type?: string | string[];
  enum?: unknown[];
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
};
interface Operation {
  operationId: string;
  summary?: string;
  description?: string;
  'x-task-type'?: string;
  requestBody?: { content?: Record<string, { schema?: Schema; examples?: Record<string, { value?: unknown }> }> };
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

/** What a media field takes, from its name: the file picker's `accept`. */
function acceptOf(name: string): string {
  if (/audio/.test(name)) return 'audio/*';
  if (/srt|subtitle/.test(name)) return '.srt,.vtt,.ass,text/plain';
  if (/video/.test(name)) return 'video/*';
  if (/image/.test(name)) return 'image/*';
  return '';
}

export function taskForms(doc: Document): TaskFormsModule {
  const schemas = doc.components.schemas;
  const resolve = (schema: Schema): Schema => {
    if (schema.$ref) return resolve(schemas[schema.$ref.replace('#/components/schemas/', '')]);
    // `allOf: [ref]` beside a property's own default, example and description (how Nest writes enum properties).
    if (schema.allOf?.length === 1) {
      const { allOf, ...own } = schema;
      return { ...resolve(allOf[0]), ...own };
    }
    return schema;
  };

  const field = (name: string, raw: Schema, required: boolean): FieldSpec => {
    const schema = resolve(raw);
    const description = typeof schema.description === 'string' ? schema.description : '';
    const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
    const spec: FieldSpec = { name, required, kind: 'string', description };
    for (const key of ['default', 'example', 'minimum', 'maximum', 'minLength', 'maxLength', 'minItems', 'maxItems']) {
      if (schema[key] !== undefined) (spec as unknown as Record<string, unknown>)[key] = schema[key];
    }
    if (schema.writeOnly) spec.secret = true;
    if (schema.enum) {
      spec.kind = 'enum';
      spec.options = schema.enum.map(String);
      if (schema.enum.every((v) => typeof v === 'number')) spec.numeric = true;
    } else if (type === 'integer' || type === 'number') {
      spec.kind = type;
    } else if (type === 'boolean') {
      spec.kind = 'boolean';
    } else if (type === 'object') {
      spec.kind = 'json';
    } else if (type === 'array' && schema.items) {
      const items = resolve(schema.items);
      if (items.enum) {
        spec.kind = 'multi';
        spec.options = items.enum.map(String);
      } else if (items.properties) {
        spec.kind = 'list';
        const inner = new Set(items.required ?? []);
        spec.fields = Object.entries(items.properties).map(([n, s]) => field(n, s, inner.has(n)));
      } else {
        spec.kind = 'json';
      }
    } else if (schema.format === 'date-time') {
      spec.kind = 'datetime';
    } else if (/upload:<id>/.test(description)) {
      spec.kind = 'media';
      spec.accept = acceptOf(name);
    }
    return spec;
  };

  const enumOf = (name: string) => (resolve({ $ref: `#/components/schemas/${name}` }).enum ?? []).map(String);
  const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method, op]) => method === 'post' && op['x-task-type'])
      .map(([, op]) => ({ path, op })),
  );
  const forms: TaskForm[] = operations.map(({ path, op }) => {
    const body = op.requestBody?.content?.['application/json'];
    const schema = resolve(body?.schema ?? {});
    const required = new Set(schema.required ?? []);
    const example = Object.values(body?.examples ?? {})[0]?.value;
    return {
      type: op['x-task-type']!,
      operationId: op.operationId,
      path,
      title: op.summary ?? op.operationId,
      description: op.description ?? '',
      fields: Object.entries(schema.properties ?? {}).map(([name, s]) => field(name, s, required.has(name))),
      example: (example ?? {}) as Record<string, unknown>,
    };
  });
  const taskTypes = enumOf('TaskType');
  forms.sort((a, b) => taskTypes.indexOf(a.type) - taskTypes.indexOf(b.type));
  // The fields every form has (webhook, priority, provider…) are the options shown apart from a type's own.
  const common = forms.length
    ? forms[0].fields.map((f) => f.name).filter((name) => forms.every((f) => f.fields.some((g) => g.name === name)))
    : [];
  return {
    forms,
    common,
    taskTypes,
    taskStatuses: enumOf('TaskStatus'),
    eventTypes: enumOf('TaskEventType'),
  };
}

export function taskFormsFromFile(file: string): TaskFormsModule {
  return taskForms(JSON.parse(readFileSync(file, 'utf8')) as Document);
}
