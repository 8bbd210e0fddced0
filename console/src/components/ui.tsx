import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api';

/** Loads with `load` on mount and whenever `deps` change; `reload` runs it again (the last answer wins). */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const run = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++run.current;
    try {
      const data = await load();
      if (mine === run.current) setState({ data, loading: false });
    } catch (error) {
      if (mine === run.current) setState((s) => ({ ...s, error: error as Error, loading: false }));
    }
  }, deps);
  useEffect(() => {
    setState((s) => ({ ...s, loading: true }));
    void reload();
  }, [reload]);
  return { ...state, reload, setData: (data: T) => setState({ data, loading: false }) };
}

export function Status({ status }: { status: string }) {
  return <span class={`status status-${status}`}>{status}</span>;
}

export function Progress({ value, label }: { value: number; label: string }) {
  const percent = Math.round(Math.max(0, Math.min(1, value)) * 100);
  return (
    <span class="progress">
      <progress max={100} value={percent} aria-label={label} />
      <span class="progress-text">{percent}%</span>
    </span>
  );
}

export function When({ at }: { at?: string | null }) {
  if (!at) return <span class="muted">—</span>;
  const date = new Date(at);
  return (
    <time dateTime={at} title={date.toISOString()}>
      {date.toLocaleString()}
    </time>
  );
}

export function ErrorNote({ error }: { error?: Error | string | null }) {
  if (!error) return null;
  const message = typeof error === 'string' ? error : error.message;
  return (
    <div class="error" role="alert">
      {error instanceof ApiError && <strong>{error.code}: </strong>}
      {message}
      {error instanceof ApiError && error.fields.length > 0 && (
        <ul>
          {error.fields.map((f) => (
            <li key={f.field}>
              <code>{f.field}</code>: {f.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Json({ value, label }: { value: unknown; label: string }) {
  return (
    <pre class="json" role="region" aria-label={label} tabIndex={0}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

export function Section({
  title,
  children,
  actions,
}: {
  title: string;
  children: ComponentChildren;
  actions?: ComponentChildren;
}) {
  return (
    <section class="card">
      <div class="card-head">
        <h2>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
}

export function Money({ cost }: { cost?: { amount: number; currency: string } | null }) {
  if (!cost) return <span class="muted">—</span>;
  return (
    <span>
      {cost.amount.toLocaleString(undefined, { maximumFractionDigits: 4 })} {cost.currency}
    </span>
  );
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}

export function duration(ms?: number | null): string {
  if (ms == null) return '—';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** A table with a caption for screen readers, column headings, and the rows given; scrolls sideways on a phone. */
export function Table({
  caption,
  columns,
  children,
  class: className,
  testId,
}: {
  caption: string;
  columns: string[];
  children: ComponentChildren;
  class?: string;
  testId?: string;
}) {
  return (
    <div class="table-wrap">
      <table class={className} data-testid={testId}>
        <caption class="sr-only">{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th scope="col" key={c}>
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
