import { ok } from '../api';
import { ErrorNote, Section, shortId, Status, Table, useLoad, When } from '../components/ui';
import { scopeOf, useSession, useTaskEvents } from '../context';
import { href } from '../router';

const STATES = ['queued', 'processing', 'completed', 'failed', 'cancelled'] as const;

export function BatchesPage({ id }: { id?: string }) {
  const session = useSession();
  const { client } = session;
  const list = useLoad(
    () => ok(client.GET('/api/v1/media/batch', { params: { query: { limit: 50, ...scopeOf(session) } } })),
    [session.everything],
  );
  const one = useLoad(
    () => (id ? ok(client.GET('/api/v1/media/batch/{id}', { params: { path: { id } } })) : Promise.resolve(undefined)),
    [id],
  );
  // A batch's counts move with its tasks: re-read the open batch when one of its tasks ends.
  useTaskEvents((event) => {
    if (one.data?.tasks.some((t) => t.id === event.task_id) && event.event_type !== 'task.progress') {
      void one.reload();
    }
  });
  return (
    <section>
      <h1>Batches</h1>
      {id && (
        <Section title={`Batch ${shortId(id)}`}>
          <ErrorNote error={one.error} />
          {one.data && (
            <>
              <p>
                {one.data.total} tasks · created <When at={one.data.created_at} />
                {one.data.completed_at && (
                  <>
                    {' '}
                    · finished <When at={one.data.completed_at} />
                  </>
                )}
              </p>
              <ul class="counts">
                {STATES.map((s) => (
                  <li key={s}>
                    <Status status={s} /> {one.data!.counts[s]}
                  </li>
                ))}
              </ul>
              <ul class="plain">
                {one.data.tasks.map((t) => (
                  <li key={t.id}>
                    <a href={href(`tasks/${t.id}`)} class="mono">
                      {shortId(t.id)}
                    </a>{' '}
                    <Status status={t.status} />
                  </li>
                ))}
              </ul>
            </>
          )}
        </Section>
      )}
      <ErrorNote error={list.error} />
      {list.data && list.data.data.length === 0 && (
        <p class="empty">No batches yet: POST /api/v1/media/batch submits up to 50 tasks at once.</p>
      )}
      {list.data && list.data.data.length > 0 && (
        <Table caption="Batches, newest first" columns={['Batch', 'Tasks', ...STATES, 'Created']}>
          {list.data.data.map((b) => (
            <tr key={b.id}>
              <td>
                <a href={href(`batches/${b.id}`)} class="mono">
                  {shortId(b.id)}
                </a>
              </td>
              <td>{b.total}</td>
              {STATES.map((s) => (
                <td key={s}>{b.counts[s]}</td>
              ))}
              <td>
                <When at={b.created_at} />
              </td>
            </tr>
          ))}
        </Table>
      )}
    </section>
  );
}
