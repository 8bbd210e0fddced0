import type { FieldSpec } from './spec';

/** What a form holds per field: text as typed, a checkbox, chosen options, or the rows of a list. */
export type FieldValue = string | boolean | string[] | FormValues[];
export type FormValues = Record<string, FieldValue>;

function asText(value: unknown): string {
  return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
}

/** The starting value of a field: its default, else (for required text and numbers) the document's example. */
export function initialValue(field: FieldSpec, example?: unknown): FieldValue {
  switch (field.kind) {
    case 'boolean':
      return field.default === true;
    case 'multi':
      return Array.isArray(field.default) ? field.default.map(String) : [];
    case 'list': {
      const rows = Array.isArray(example) ? (example as Record<string, unknown>[]) : [];
      // A required list starts with the rows it needs; an optional one empty (its Add button makes a row).
      const count = field.required ? Math.max(field.minItems ?? 1, 1) : 0;
      return Array.from({ length: count }, (_, i) => initialValues(field.fields ?? [], rows[i] ?? {}));
    }
    case 'media':
      return '';
    case 'enum': {
      // A required choice starts on a real option (a select cannot show an empty one it does not have).
      const chosen = field.default ?? example ?? (field.required ? (field.example ?? field.options?.[0]) : undefined);
      return chosen === undefined ? '' : asText(chosen);
    }
    case 'json':
      return field.default !== undefined ? JSON.stringify(field.default) : '';
    default: {
      if (field.default !== undefined) return asText(field.default);
      const guess = example ?? (field.required ? field.example : undefined);
      return guess !== undefined && (field.kind === 'string' || field.kind === 'integer' || field.kind === 'number')
        ? asText(guess)
        : '';
    }
  }
}

export function initialValues(fields: FieldSpec[], example: Record<string, unknown>): FormValues {
  return Object.fromEntries(fields.map((f) => [f.name, initialValue(f, example[f.name])]));
}

/** A value the user could not have meant: named with its field, shown beside it. */
export class FieldError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The request body of a form: empty optional fields, and optional ones left at their default, are left out (the
 * server applies the same defaults, and some fields are refused where they do not apply); numbers and JSON are parsed,
 * a local date and time becomes ISO 8601. The server validates everything again; this only converts.
 */
export function bodyOf(fields: FieldSpec[], values: FormValues, prefix = ''): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const field of fields) {
    const value = values[field.name];
    const name = `${prefix}${field.name}`;
    switch (field.kind) {
      case 'boolean':
        if (field.required || value !== (field.default === true)) body[field.name] = value === true;
        break;
      case 'multi':
        if (Array.isArray(value) && value.length) body[field.name] = value;
        break;
      case 'list': {
        const rows = value as FormValues[];
        if (rows.length || field.required) {
          body[field.name] = rows.map((row, i) => bodyOf(field.fields ?? [], row, `${name}[${i}].`));
        }
        break;
      }
      default: {
        const text = typeof value === 'string' ? value.trim() : '';
        if (!text || (!field.required && field.default !== undefined && text === asText(field.default))) break;
        if (field.kind === 'integer' || field.kind === 'number' || field.numeric) {
          const n = Number(text);
          if (!Number.isFinite(n)) throw new FieldError(name, `${name} must be a number`);
          body[field.name] = n;
        } else if (field.kind === 'json') {
          try {
            body[field.name] = JSON.parse(text);
          } catch {
            throw new FieldError(name, `${name} is not valid JSON`);
          }
        } else if (field.kind === 'datetime') {
          const at = new Date(text);
          if (Number.isNaN(at.getTime())) throw new FieldError(name, `${name} is not a date and time`);
          body[field.name] = at.toISOString();
        } else {
          body[field.name] = text;
        }
      }
    }
  }
  return body;
}
