import { useState } from 'preact/hooks';
import { ok, type Task, type TaskEvent } from '../api';
import { DeliveryList } from '../components/deliveries';
import { Outputs } from '../components/outputs';
import { duration, ErrorNote, Json, Money, Progress, Section, Status, useLoad, When } from '../components/ui';
import { useSession, useTaskEvents } from '../context';
import { href } from '../router';
import { applyEvent } from './tasks';

const ACTIVE = new Set(['pending', 'queued', 'processing']);
const RETRYABLE = new Set(['failed', 'cancelled']);

interface TimelineEntry {
  at: string;
  what: string;
  detail?: string;
}

/** What the task's own timestamps tell, then the events seen live on this page (progress folded into one line). */
function timeline(task: Task, seen: TaskEvent[]): TimelineEntry[] {
  const entries: TimelineEntry[] = [{ at: task.created_at, what: 'created' }];
  if (task.started_at) entries.push({ at: task.started_at, what: 'started', detail: task.provider ?? undefined });
  for (const event of seen) {
    const what = event.event_type.replace('task.', '');
    if (what === 'created' || (what === 'started' && task.started_at)) continue;
    const last = entries[entries.length - 1];
    const detail =
      what === 'progress'
        ? `${Math.round((event.data.progress ?? 0) * 100)}%`
        : (event.data.error?.message ?? undefined);
    if (what === 'progress' && last.what === 'progress') Object.assign(last, { at: event.timestamp, detail });
    else if (!entries.some((e) => e.what === what && what !== 'progress' && e.at === event.timestamp))
      entries.push({ at: event.timestamp, what, detail });
  }
  const end = task.completed_at;
  if (end && !entries.some((e) => ['completed', 'failed', 'cancelled'].includes(e.what))) {
    entries.push({ at: end, what: task.status, detail: task.error?.message });
  }
  return entries.sort((a, b) => a.at.localeCompare(b.at));
}

export function TaskPage({ id }: { id: string }) {
  const { client } = useSession();
  const task = useLoad(() => ok(client.GET('/api/v1/media/tasks/{id}', { params: { path: { id } } })), [id]);
  const deliveries = useLoad(
    () => ok(client.GET('/api/v1/media/tasks/{id}/webhooks', { params: { path: { id } } })),
    [id],
  );
  const [seen, setSeen] = useState<TaskEvent[]>([]);
  const [actionError, setActionError] = useState<Error>();
  const [busy, setBusy] = useState(false);

  useTaskEvents(
    (event) => {
      if (event.task_id !== id) return;
      setSeen((s) => [...s, event]);
      if (task.data) task.setData(applyEvent(task.data, event));
      // The event does not carry provider, cost, attempts or timings: read them when the task starts or ends.
      if (event.event_type !== 'task.progress') {
        void task.reload();
        void deliveries.reload();
      }
    },
    () => void task.reload(),
  );

  const act = async (action: 'cancel' | 'retry') => {
    setBusy(true);
    setActionError(undefined);
    try {
      const path = action === 'cancel' ? '/api/v1/media/tasks/{id}/cancel' : '/api/v1/media/tasks/{id}/retry';
      const next = await ok(client.POST(path, { params: { path: { id } } }));
      task.setData(next);
    } catch (err) {
      setActionError(err as Error);
    } finally {
      setBusy(false);
    }
  };

  if (task.error && !task.data) {
    return (
      <section>
        <h1>Task</h1>
        <ErrorNote error={task.error} />
        <a href={href('tasks')}>Back to tasks</a>
      </section>
    );
  }
  const t = task.data;
  if (!t) return <p aria-busy="true">Loading…</p>;
  return (
    <section class="task" data-task-id={t.id} data-status={t.status}>
      <p>
        <a href={href('tasks')}>← Tasks</a>
      </p>
      <div class="page-head">
        <h1>
          {t.type} <span class="mono small">{t.id}</span>
        </h1>
        <div class="actions">
          {ACTIVE.has(t.status) && (
            <button type="button" class="danger" disabled={busy} onClick={() => void act('cancel')}>
              Cancel task
            </button>
          )}
          {RETRYABLE.has(t.status) && (
            <button type="button" disabled={busy} onClick={() => void act('retry')}>
              Retry task
            </button>
          )}
        </div>
      </div>
      <div class="summary" aria-live="polite">
        <Status status={t.status} />
        <Progress value={t.progress} label="Progress" />
        {t.queue_position != null && <span>Queue position {t.queue_position}</span>}
        {t.cached && <span class="tag">cached</span>}
      </div>
      <ErrorNote error={actionError} />
      {t.error && (
        <div class="error" role="alert">
          <strong>{t.error.code}</strong>: {t.error.message}
        </div>
      )}
      {t.status === 'completed' && t.output && (
        <Section title="Output">
          <Outputs output={t.output} taskId={t.id} />
        </Section>
      )}
      <div class="columns">
        <Section title="Details">
          <dl class="facts">
            <dt>Priority</dt>
            <dd>{t.priority}</dd>
            <dt>Provider</dt>
            <dd>{t.provider ?? '—'}</dd>
            <dt>Attempts</dt>
            <dd>{t.attempts}</dd>
            <dt>Cost</dt>
            <dd>
              <Money cost={t.cost} />
            </dd>
            <dt>Created</dt>
            <dd>
              <When at={t.created_at} />
            </dd>
            <dt>Started</dt>
            <dd>
              <When at={t.started_at} />
            </dd>
            <dt>Finished</dt>
            <dd>
              <When at={t.completed_at} />
            </dd>
            <dt>Waited</dt>
            <dd>{duration(t.delay_time_ms)}</dd>
            <dt>Ran</dt>
            <dd>{duration(t.execution_time_ms)}</dd>
            {t.webhook_url && (
              <>
                <dt>Webhook</dt>
                <dd class="mono url">{t.webhook_url}</dd>
              </>
            )}
          </dl>
        </Section>
        <Section title="Timeline">
          <ol class="timeline">
            {timeline(t, seen).map((e, i) => (
              <li key={i}>
                <When at={e.at} /> <strong>{e.what}</strong> {e.detail && <span class="muted">{e.detail}</span>}
              </li>
            ))}
          </ol>
        </Section>
      </div>
      <Section title="Input">
        <Json value={t.input} label="Input" />
        {t.metadata && <Json value={t.metadata} label="Metadata" />}
      </Section>
      {t.output && t.status !== 'completed' && (
        <Section title="Output so far">
          <Json value={t.output} label="Output" />
        </Section>
      )}
      <Section title="Webhook deliveries">
        <ErrorNote error={deliveries.error} />
        {deliveries.data && (
          <DeliveryList deliveries={deliveries.data.data} onReplayed={() => void deliveries.reload()} />
        )}
      </Section>
    </section>
  );
}
