import forms from 'virtual:task-forms';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { apiErrorOf, authHeaders, ok, type Task } from '../api';
import { ErrorNote } from '../components/ui';
import { useSession } from '../context';
import type { FieldSpec, TaskForm } from '../forms/spec';
import { bodyOf, FieldError, initialValues, type FieldValue, type FormValues } from '../forms/values';
import { href, navigate } from '../router';

type Samples = Record<string, string>;

/** The sandbox's sample files as the viewer's uploads (made once per page load); undefined outside the sandbox. */
let samples: Promise<Samples | undefined> | undefined;

function sampleFor(accept: string, all: Samples): string | undefined {
  if (accept.startsWith('audio')) return all.audio;
  if (accept.startsWith('video')) return all.video;
  if (accept.startsWith('image')) return all.image;
  if (accept.includes('.srt')) return all.subtitles;
  return undefined;
}

function labelOf(name: string): string {
  const words = name.replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function SubmitPage({ type }: { type?: string }) {
  const form = forms.forms.find((f) => f.type === type) ?? forms.forms[0];
  return (
    <section>
      <h1>Submit a task</h1>
      <nav aria-label="Task types" class="tabs">
        <ul>
          {forms.forms.map((f) => (
            <li key={f.type}>
              <a href={href(`submit/${f.type}`)} aria-current={f === form ? 'page' : undefined}>
                {f.type}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <TaskFormView key={form.type} form={form} />
    </section>
  );
}

function TaskFormView({ form }: { form: TaskForm }) {
  const session = useSession();
  const [values, setValues] = useState<FormValues>(() => initialValues(form.fields, form.example));
  const [error, setError] = useState<Error>();
  const [busy, setBusy] = useState(false);
  const [providers, setProviders] = useState<string[]>([]);
  const [sandbox, setSandbox] = useState(false);
  const own = form.fields.filter((f) => !forms.common.includes(f.name));
  const common = form.fields.filter((f) => forms.common.includes(f.name));
  const invalid = useMemo(() => {
    const fields = new Map<string, string>();
    if (error instanceof FieldError) fields.set(error.field, error.message);
    for (const f of (error as { fields?: { field: string; message: string }[] } | undefined)?.fields ?? []) {
      fields.set(f.field, f.message);
    }
    return fields;
  }, [error]);

  useEffect(() => {
    ok(session.client.GET('/api/v1/media/providers'))
      .then((list) =>
        setProviders(list.data.filter((p) => p.task_types.includes(form.type as never)).map((p) => p.name)),
      )
      .catch(() => setProviders([]));
    fetch('/api/v1/sandbox/samples', { headers: authHeaders(session.credentials) })
      .then((res) => setSandbox(res.ok))
      .catch(() => setSandbox(false));
  }, [form.type]);

  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      const body = bodyOf(form.fields, values);
      const res = await fetch(form.path, {
        method: 'POST',
        headers: { ...authHeaders(session.credentials), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const answer = (await res.json().catch(() => undefined)) as Task | undefined;
      if (!res.ok || !answer) throw apiErrorOf(res.status, answer);
      navigate(`tasks/${answer.id}`);
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };
  const useSample = async (field: string, accept: string) => {
    setError(undefined);
    samples ??= fetch('/api/v1/sandbox/samples', {
      method: 'POST',
      headers: authHeaders(session.credentials),
    }).then(async (res) => {
      if (!res.ok) throw apiErrorOf(res.status, await res.json().catch(() => undefined));
      const made = (await res.json()) as Record<string, { url: string }>;
      return Object.fromEntries(Object.entries(made).map(([kind, upload]) => [kind, upload.url]));
    });
    try {
      const url = sampleFor(accept, (await samples) ?? {});
      if (url) setValues((v) => setPath(v, field, url));
    } catch (err) {
      samples = undefined;
      setError(err as Error);
    }
  };
  const ctx: FieldContext = { values, setValues, invalid, providers, sandbox, useSample, upload: uploadFor(session) };
  return (
    <form class="task-form" onSubmit={submit} noValidate aria-describedby="form-description">
      <h2>{form.title}</h2>
      {form.description && <p id="form-description">{form.description}</p>}
      {own.map((f) => (
        <Field key={f.name} field={f} path={f.name} ctx={ctx} />
      ))}
      <details>
        <summary>Options: priority, provider, webhook, metadata</summary>
        {common.map((f) => (
          <Field key={f.name} field={f} path={f.name} ctx={ctx} />
        ))}
      </details>
      <ErrorNote error={error} />
      <div class="form-actions">
        <button type="submit" disabled={busy}>
          {busy ? 'Submitting…' : `Submit ${form.type}`}
        </button>
        <a href={href('tasks')}>Cancel</a>
      </div>
    </form>
  );
}

interface FieldContext {
  values: FormValues;
  setValues: (update: (v: FormValues) => FormValues) => void;
  invalid: Map<string, string>;
  providers: string[];
  sandbox: boolean;
  useSample: (path: string, accept: string) => Promise<void>;
  upload: (file: File) => Promise<string>;
}

/** Paths are `name` or `list[2].name`. */
function getPath(values: FormValues, path: string): FieldValue | undefined {
  const [head, index, rest] = path.split(/\[(\d+)\]\./);
  if (index === undefined) return values[head];
  return getPath((values[head] as FormValues[])[Number(index)], rest);
}

function setPath(values: FormValues, path: string, value: FieldValue): FormValues {
  const [head, index, rest] = path.split(/\[(\d+)\]\./);
  if (index === undefined) return { ...values, [head]: value };
  const rows = [...(values[head] as FormValues[])];
  rows[Number(index)] = setPath(rows[Number(index)], rest, value);
  return { ...values, [head]: rows };
}

function uploadFor(session: ReturnType<typeof useSession>) {
  return async (file: File): Promise<string> => {
    const data = new FormData();
    data.append('file', file, file.name);
    const res = await fetch('/api/v1/media/uploads', {
      method: 'POST',
      headers: authHeaders(session.credentials),
      body: data,
    });
    const body = (await res.json().catch(() => undefined)) as { url?: string } | undefined;
    if (!res.ok || !body?.url) throw apiErrorOf(res.status, body);
    return body.url;
  };
}

function limits(field: FieldSpec): string {
  const parts: string[] = [];
  if (field.minimum !== undefined && field.maximum !== undefined) parts.push(`${field.minimum}–${field.maximum}`);
  else if (field.minimum !== undefined) parts.push(`at least ${field.minimum}`);
  else if (field.maximum !== undefined) parts.push(`at most ${field.maximum}`);
  if (field.maxLength !== undefined) parts.push(`up to ${field.maxLength} characters`);
  if (field.maxItems !== undefined) parts.push(`up to ${field.maxItems}`);
  if (field.default !== undefined && field.kind !== 'list') parts.push(`default ${JSON.stringify(field.default)}`);
  return parts.join(', ');
}

function Field({ field, path, ctx }: { field: FieldSpec; path: string; ctx: FieldContext }) {
  const id = `field-${path.replace(/[^\w-]/g, '-')}`;
  const value = getPath(ctx.values, path);
  const set = (v: FieldValue) => ctx.setValues((all) => setPath(all, path, v));
  const problem = ctx.invalid.get(path);
  const help = [field.description, limits(field)].filter(Boolean).join(' · ');
  const described = [help && `${id}-help`, problem && `${id}-error`].filter(Boolean).join(' ') || undefined;
  const label = (
    <label for={id}>
      {labelOf(field.name)}
      {field.required && <span aria-hidden="true"> *</span>}
    </label>
  );
  const notes = (
    <>
      {help && (
        <small id={`${id}-help`} class="help">
          {help}
        </small>
      )}
      {problem && (
        <small id={`${id}-error`} class="field-error">
          {problem}
        </small>
      )}
    </>
  );
  const common = {
    id,
    name: path,
    required: field.required,
    'aria-describedby': described,
    'aria-invalid': problem ? true : undefined,
  };
  const text = typeof value === 'string' ? value : '';
  switch (field.kind) {
    case 'enum':
      return (
        <div class="field">
          {label}
          <select {...common} value={text} onChange={(e) => set(e.currentTarget.value)}>
            {!field.required && <option value="">(default)</option>}
            {field.options?.map((o) => (
              <option key={o} value={o}>
                {o}
              </option>
            ))}
          </select>
          {notes}
        </div>
      );
    case 'boolean':
      return (
        <div class="field check">
          <input {...common} type="checkbox" checked={value === true} onChange={(e) => set(e.currentTarget.checked)} />
          {label}
          {notes}
        </div>
      );
    case 'multi':
      return (
        <fieldset class="field" aria-describedby={described}>
          <legend>{labelOf(field.name)}</legend>
          {field.options?.map((o) => (
            <label key={o} class="check">
              <input
                type="checkbox"
                checked={(value as string[]).includes(o)}
                onChange={(e) =>
                  set(
                    e.currentTarget.checked ? [...(value as string[]), o] : (value as string[]).filter((x) => x !== o),
                  )
                }
              />{' '}
              {o}
            </label>
          ))}
          {notes}
        </fieldset>
      );
    case 'list': {
      const rows = value as FormValues[];
      return (
        <fieldset class="field list" aria-describedby={described}>
          <legend>{labelOf(field.name)}</legend>
          {rows.map((_, i) => (
            <div class="list-row" key={i}>
              <span class="list-index">{i + 1}</span>
              {field.fields?.map((f) => (
                <Field key={f.name} field={f} path={`${path}[${i}].${f.name}`} ctx={ctx} />
              ))}
              {rows.length > (field.required ? Math.max(field.minItems ?? 1, 1) : 0) && (
                <button type="button" class="link" onClick={() => set(rows.filter((__, j) => j !== i))}>
                  Remove {i + 1}
                </button>
              )}
            </div>
          ))}
          {rows.length < (field.maxItems ?? Infinity) && (
            <button
              type="button"
              class="secondary"
              onClick={() => set([...rows, initialValues(field.fields ?? [], {})])}
            >
              Add another
            </button>
          )}
          {notes}
        </fieldset>
      );
    }
    case 'media':
      return <MediaField field={field} path={path} ctx={ctx} common={common} label={label} notes={notes} text={text} />;
    case 'json':
      return (
        <div class="field">
          {label}
          <textarea {...common} rows={3} spellcheck={false} value={text} onInput={(e) => set(e.currentTarget.value)} />
          {notes}
        </div>
      );
    default: {
      const long =
        field.kind === 'string' && (field.name === 'prompt' || field.name === 'text' || (field.maxLength ?? 0) > 500);
      return (
        <div class="field">
          {label}
          {long ? (
            <textarea {...common} rows={3} value={text} onInput={(e) => set(e.currentTarget.value)} />
          ) : field.name === 'provider' && ctx.providers.length ? (
            <select {...common} value={text} onChange={(e) => set(e.currentTarget.value)}>
              <option value="">(routing chooses)</option>
              {ctx.providers.map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </select>
          ) : (
            <input
              {...common}
              type={
                field.kind === 'integer' || field.kind === 'number'
                  ? 'number'
                  : field.kind === 'datetime'
                    ? 'datetime-local'
                    : field.secret
                      ? 'password'
                      : 'text'
              }
              step={field.kind === 'number' ? 'any' : undefined}
              min={field.minimum}
              max={field.maximum}
              value={text}
              onInput={(e) => set(e.currentTarget.value)}
            />
          )}
          {notes}
        </div>
      );
    }
  }
}

function MediaField({
  field,
  path,
  ctx,
  common,
  label,
  notes,
  text,
}: {
  field: FieldSpec;
  path: string;
  ctx: FieldContext;
  common: Record<string, unknown>;
  label: preact.JSX.Element;
  notes: preact.JSX.Element;
  text: string;
}) {
  const [state, setState] = useState('');
  const set = (v: string) => ctx.setValues((all) => setPath(all, path, v));
  const onFile = async (e: Event) => {
    const file = (e.currentTarget as HTMLInputElement).files?.[0];
    if (!file) return;
    setState(`Uploading ${file.name}…`);
    try {
      set(await ctx.upload(file));
      setState(`Uploaded ${file.name}`);
    } catch (err) {
      setState(`Upload failed: ${(err as Error).message}`);
    }
  };
  const fileId = `${String(common.id)}-file`;
  return (
    <div class="field media">
      {label}
      <input
        {...common}
        type="text"
        inputMode="url"
        placeholder="https://… or upload:<id>"
        value={text}
        onInput={(e) => set(e.currentTarget.value)}
      />
      <div class="media-actions">
        <input
          id={fileId}
          class="visually-hidden"
          type="file"
          accept={field.accept || undefined}
          onChange={(e) => void onFile(e)}
        />
        <label class="button secondary" for={fileId}>
          Upload a file<span class="sr-only"> for {labelOf(field.name)}</span>
        </label>
        {ctx.sandbox && field.accept && (
          <button type="button" class="secondary" onClick={() => void ctx.useSample(path, field.accept!)}>
            Use a sample
          </button>
        )}
        <span role="status" class="muted">
          {state}
        </span>
      </div>
      {notes}
    </div>
  );
}
