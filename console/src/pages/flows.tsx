import { ok } from '../api';
import { ErrorNote, Json, Section, shortId, Status, Table, useLoad, When } from '../components/ui';
import { scopeOf, useSession } from '../context';
import { href } from '../router';

export function FlowsPage({ id }: { id?: string }) {
  const session = useSession();
  const { client } = session;
  const flows = useLoad(
    () => ok(client.GET('/api/v1/flows', { params: { query: scopeOf(session) } })),
    [session.everything],
  );
  const runs = useLoad(
    () => ok(client.GET('/api/v1/flows/runs', { params: { query: { limit: 50, ...scopeOf(session) } } })),
    [session.everything],
  );
  const run = useLoad(
    () => (id ? ok(client.GET('/api/v1/flows/runs/{id}', { params: { path: { id } } })) : Promise.resolve(undefined)),
    [id],
  );
  const names = new Map((flows.data?.data ?? []).map((f) => [f.id, f.name]));
  return (
    <section>
      <h1>Flows</h1>
      {id && (
        <Section title={`Run ${shortId(id)}`}>
          <ErrorNote error={run.error} />
          {run.data && (
            <>
              <p>
                <Status status={run.data.status} /> {names.get(run.data.flow_id) ?? shortId(run.data.flow_id)} v
                {run.data.version} · {run.data.source} · started{' '}
                <When at={run.data.started_at ?? run.data.created_at} />
              </p>
              {run.data.error && (
                <div class="error" role="alert">
                  <strong>{run.data.error.code}</strong>: {run.data.error.message}
                </div>
              )}
              <ol class="timeline">
                {(run.data.steps ?? []).map((step, i) => (
                  <li key={i}>
                    <Json value={step} label={`Step ${i + 1}`} />
                  </li>
                ))}
              </ol>
            </>
          )}
        </Section>
      )}
      <Section title="Runs">
        <ErrorNote error={runs.error} />
        {runs.data && runs.data.data.length === 0 && <p class="empty">No flow runs yet.</p>}
        {runs.data && runs.data.data.length > 0 && (
          <Table caption="Flow runs, newest first" columns={['Run', 'Flow', 'Status', 'Step', 'Source', 'Created']}>
            {runs.data.data.map((r) => (
              <tr key={r.id}>
                <td>
                  <a href={href(`flows/${r.id}`)} class="mono">
                    {shortId(r.id)}
                  </a>
                </td>
                <td>{names.get(r.flow_id) ?? shortId(r.flow_id)}</td>
                <td>
                  <Status status={r.status} />
                </td>
                <td>{r.current_step ?? '—'}</td>
                <td>{r.source}</td>
                <td>
                  <When at={r.created_at} />
                </td>
              </tr>
            ))}
          </Table>
        )}
      </Section>
      <Section title="Flows">
        <ErrorNote error={flows.error} />
        {flows.data && flows.data.data.length === 0 && <p class="empty">No flows yet: POST /api/v1/flows makes one.</p>}
        <ul class="plain">
          {flows.data?.data.map((f) => (
            <li key={f.id}>
              <strong>{f.name}</strong> <span class="mono muted">{shortId(f.id)}</span> v{f.version}
            </li>
          ))}
        </ul>
      </Section>
    </section>
  );
}
