/** A field of a submit form, as the build reads it from the OpenAPI document (task-forms.ts). */
export interface FieldSpec {
  name: string;
  /** string: a text box; media: a URL or upload:<id>, with an upload button; list: repeated groups of `fields`. */
  kind: 'string' | 'enum' | 'integer' | 'number' | 'boolean' | 'json' | 'multi' | 'list' | 'datetime' | 'media';
  required: boolean;
  description: string;
  options?: string[];
  /** The options are numbers (sent as numbers, shown as text). */
  numeric?: boolean;
  fields?: FieldSpec[];
  accept?: string;
  secret?: boolean;
  default?: unknown;
  example?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
}

/** One submit endpoint: the task type it makes and its body's fields. */
export interface TaskForm {
  type: string;
  operationId: string;
  path: string;
  title: string;
  description: string;
  fields: FieldSpec[];
  /** The document's first request example. */
  example: Record<string, unknown>;
}

export interface TaskFormsModule {
  forms: TaskForm[];
  /** Fields every form has: shown as options apart from the type's own. */
  common: string[];
  taskTypes: string[];
  taskStatuses: string[];
  eventTypes: string[];
}
