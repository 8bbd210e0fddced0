import forms from 'virtual:task-forms';
import { useRef, useState } from 'preact/hooks';
import { ok, type Task, type TaskEvent } from '../api';
import { ErrorNote, Money, Progress, shortId, Status, Table, useLoad, When } from '../components/ui';
import { scopeOf, useSession, useTaskEvents } from '../context';
import { href } from '../router';

const PAGE = 25;
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
/** Queue positions move when any task starts or ends; they are re-read at most this often. */
const POSITIONS_EVERY_MS = 1000;

type Filters = { task_type?: string; status?: string };

/** Applies a live event to a task already shown: what the event carries, at once. */
export function applyEvent(task: Task, event: TaskEvent): Task {
  const data = event.data;
  return {
    ...task,
    status: data.status,
    progress: data.progress ?? task.progress,
    output: data.output_data ?? task.output,
    error: data.error ?? task.error,
    queue_position: data.status === 'queued' ? task.queue_position : undefined,
  };
}

export function TasksPage() {
  const session = useSession();
  const { client } = session;
  const [filters, setFilters] = useState<Filters>({});
  const [pages, setPages] = useState<{ tasks: Task[]; next?: string | null }>({ tasks: [] });
  const [moreError, setMoreError] = useState<Error>();
  const list = (cursor?: string) =>
    ok(
      client.GET('/api/v1/media/tasks', {
        params: {
          query: {
            limit: PAGE,
            cursor,
            ...scopeOf(session),
            ...(filters.task_type ? { task_type: filters.task_type as Task['type'] } : {}),
            ...(filters.status ? { status: filters.status as Task['status'] } : {}),
          },
        },
      }),
    );
  const first = useLoad(async () => {
    const page = await list();
    setPages({ tasks: page.data, next: page.next_cursor });
    return page;
  }, [filters, session.everything]);

  /** Per task, the last read of its row that was started: an earlier read answered later holds an older row. */
  const readsOf = useRef(new Map<string, number>());
  const refreshOne = async (id: string) => {
    const mine = (readsOf.current.get(id) ?? 0) + 1;
    readsOf.current.set(id, mine);
    const task = await ok(client.GET('/api/v1/media/tasks/{id}', { params: { path: { id } } })).catch(() => undefined);
    if (readsOf.current.get(id) !== mine) return;
    readsOf.current.delete(id);
    if (task) setPages((p) => ({ ...p, tasks: p.tasks.map((t) => (t.id === id ? task : t)) }));
  };
  // The rows as last rendered, for timers that outlive the render that set them.
  const shown = useRef<Task[]>([]);
  shown.current = pages.tasks;
  const positionsTimer = useRef<number>();
  const refreshPositions = () => {
    if (positionsTimer.current) return;
    positionsTimer.current = window.setTimeout(() => {
      positionsTimer.current = undefined;
      shown.current.filter((t) => t.status === 'queued').forEach((t) => void refreshOne(t.id));
    }, POSITIONS_EVERY_MS);
  };
  const matches = (event: TaskEvent) =>
    (!filters.task_type || event.data.type === filters.task_type) &&
    (!filters.status || event.data.status === filters.status);

  useTaskEvents(
    (event) => {
      if (!shown.current.some((t) => t.id === event.task_id)) {
        if (event.event_type === 'task.created' && matches(event)) void prepend(event.task_id);
        // The task's row is still being read: its answer may predate this event, so it is read again once shown.
        else if (prepending.current.has(event.task_id)) prepending.current.set(event.task_id, true);
        return;
      }
      setPages((p) => ({ ...p, tasks: p.tasks.map((t) => (t.id === event.task_id ? applyEvent(t, event) : t)) }));
      // Provider, cost and attempts are not in the event: read the task when it starts or ends.
      if (event.event_type === 'task.started' || TERMINAL.has(event.data.status)) {
        void refreshOne(event.task_id);
        refreshPositions();
      }
    },
    () => void first.reload(),
  );
  /** Tasks whose row is being read after their creation, and whether an event came for them meanwhile. */
  const prepending = useRef(new Map<string, boolean>());
  const prepend = async (id: string) => {
    prepending.current.set(id, false);
    const task = await ok(client.GET('/api/v1/media/tasks/{id}', { params: { path: { id } } })).catch(() => undefined);
    const missed = prepending.current.get(id);
    prepending.current.delete(id);
    if (task) setPages((p) => (p.tasks.some((t) => t.id === id) ? p : { ...p, tasks: [task, ...p.tasks] }));
    if (task && missed) void refreshOne(id);
  };
  const more = async () => {
    if (!pages.next) return;
    try {
      const page = await list(pages.next);
      setPages((p) => ({ tasks: [...p.tasks, ...page.data], next: page.next_cursor }));
    } catch (err) {
      setMoreError(err as Error);
    }
  };

  return (
    <section>
      <div class="page-head">
        <h1>Tasks</h1>
        <a class="button" href={href('submit')}>
          New task
        </a>
      </div>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
        <label>
          Type
          <select
            value={filters.task_type ?? ''}
            onChange={(e) => setFilters({ ...filters, task_type: e.currentTarget.value || undefined })}
          >
            <option value="">All types</option>
            {forms.taskTypes.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label>
          Status
          <select
            value={filters.status ?? ''}
            onChange={(e) => setFilters({ ...filters, status: e.currentTarget.value || undefined })}
          >
            <option value="">All statuses</option>
            {forms.taskStatuses.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
      </form>
      <ErrorNote error={first.error} />
      {!first.loading && pages.tasks.length === 0 && !first.error && (
        <p class="empty">
          No tasks yet. <a href={href('submit')}>Submit one</a>.
        </p>
      )}
      {pages.tasks.length > 0 && (
        <Table
          caption="Tasks, newest first, updated live"
          columns={['Task', 'Type', 'Status', 'Progress', 'Queue', 'Provider', 'Cost', 'Created']}
          class="tasks"
        >
          {pages.tasks.map((task) => (
            <tr key={task.id} data-task-id={task.id} data-status={task.status}>
              <td>
                <a href={href(`tasks/${task.id}`)} class="mono">
                  {shortId(task.id)}
                </a>
              </td>
              <td>{task.type}</td>
              <td>
                <Status status={task.status} />
              </td>
              <td>
                <Progress value={task.progress} label={`Progress of ${shortId(task.id)}`} />
              </td>
              <td>{task.queue_position ?? <span class="muted">—</span>}</td>
              <td>{task.provider ?? <span class="muted">—</span>}</td>
              <td>
                <Money cost={task.cost} />
              </td>
              <td>
                <When at={task.created_at} />
              </td>
            </tr>
          ))}
        </Table>
      )}
      <ErrorNote error={moreError} />
      {pages.next && (
        <button type="button" class="secondary" onClick={() => void more()}>
          Load more
        </button>
      )}
    </section>
  );
}
