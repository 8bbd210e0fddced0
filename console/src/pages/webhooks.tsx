import { ok } from '../api';
import { DeliveryList } from '../components/deliveries';
import { duration, ErrorNote, Section, useLoad } from '../components/ui';
import { scopeOf, useSession } from '../context';

export function WebhooksPage({ id }: { id?: string }) {
  const session = useSession();
  const { client } = session;
  const stats = useLoad(
    () => ok(client.GET('/api/v1/media/webhooks/statistics', { params: { query: scopeOf(session) } })),
    [session.everything],
  );
  const dead = useLoad(
    () =>
      ok(client.GET('/api/v1/media/webhooks/dead-letters', { params: { query: { limit: 50, ...scopeOf(session) } } })),
    [session.everything],
  );
  const one = useLoad(
    () =>
      id
        ? ok(client.GET('/api/v1/media/webhooks/{id}/status', { params: { path: { id } } }))
        : Promise.resolve(undefined),
    [id],
  );
  const s = stats.data;
  return (
    <section>
      <h1>Webhooks</h1>
      {id && (
        <Section title="Delivery">
          <ErrorNote error={one.error} />
          {one.data && <DeliveryList deliveries={[one.data]} onReplayed={() => void one.reload()} />}
        </Section>
      )}
      <Section title="Statistics">
        <ErrorNote error={stats.error} />
        {s && (
          <dl class="stats">
            <div>
              <dt>Delivered</dt>
              <dd>{s.delivered}</dd>
            </div>
            <div>
              <dt>Pending</dt>
              <dd>{s.pending}</dd>
            </div>
            <div>
              <dt>Failed</dt>
              <dd>{s.failed}</dd>
            </div>
            <div>
              <dt>Dead</dt>
              <dd>{s.dead}</dd>
            </div>
            <div>
              <dt>Success rate</dt>
              <dd>{s.success_rate == null ? '—' : `${Math.round(s.success_rate * 1000) / 10}%`}</dd>
            </div>
            <div>
              <dt>Latency p50</dt>
              <dd>{duration((s.latency_ms as { p50?: number | null }).p50)}</dd>
            </div>
          </dl>
        )}
      </Section>
      <Section title="Dead letters">
        <p class="muted">Deliveries that failed every attempt. Replay sends one again with the same webhook-id.</p>
        <ErrorNote error={dead.error} />
        {dead.data && (
          <DeliveryList
            deliveries={dead.data.data}
            onReplayed={() => {
              void stats.reload();
            }}
          />
        )}
      </Section>
    </section>
  );
}
