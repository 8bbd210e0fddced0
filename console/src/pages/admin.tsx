import { useEffect, useState } from 'preact/hooks';
import { ok, type Schemas } from '../api';
import { duration, ErrorNote, Section, Status, Table, useLoad, When } from '../components/ui';
import { useSession } from '../context';

/** The queue counts refresh on their own, as the image app's admin page did. */
const QUEUES_EVERY_MS = 5000;
const SCOPES: Schemas['ApiKeyScope'][] = ['tasks', 'queue:read', 'queue:write'];

export function AdminPage() {
  const session = useSession();
  if (!session.admin) {
    return (
      <section>
        <h1>Admin</h1>
        <p>These pages are for admins: sign in with a token that has the admin role.</p>
      </section>
    );
  }
  return (
    <section>
      <h1>Admin</h1>
      <Queues />
      <Providers />
      <Cache />
      <ApiKeys />
      <SandboxKnobs />
    </section>
  );
}

function Queues() {
  const { client } = useSession();
  const stats = useLoad(() => ok(client.GET('/api/v1/queue/stats')), []);
  useEffect(() => {
    const timer = setInterval(() => void stats.reload(), QUEUES_EVERY_MS);
    return () => clearInterval(timer);
  }, [stats.reload]);
  const columns = ['waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed'] as const;
  return (
    <Section title="Queues" actions={<span class="muted">refreshed every {QUEUES_EVERY_MS / 1000} s</span>}>
      <ErrorNote error={stats.error} />
      {stats.data && (
        <Table caption="Jobs by queue and state" columns={['Queue', ...columns, 'Paused']} testId="queue-stats">
          {Object.entries(stats.data.queues).map(([name, q]) => (
            <tr key={name}>
              <th scope="row">{name}</th>
              {columns.map((c) => (
                <td key={c}>{q[c]}</td>
              ))}
              <td>{q.paused ? 'yes' : 'no'}</td>
            </tr>
          ))}
        </Table>
      )}
    </Section>
  );
}

function Providers() {
  const { client } = useSession();
  const providers = useLoad(() => ok(client.GET('/api/v1/media/providers')), []);
  return (
    <Section title="Providers">
      <ErrorNote error={providers.error} />
      {providers.data && (
        <Table
          caption="Providers with their health"
          columns={['Provider', 'Task types', 'Configured', 'Circuit', 'Success', 'Latency', 'In flight']}
        >
          {providers.data.data.map((p) => (
            <tr key={p.name}>
              <th scope="row">{p.name}</th>
              <td>{p.task_types.join(', ')}</td>
              <td>{p.configured ? 'yes' : 'no'}</td>
              <td>
                <Status status={p.health.circuit_state} />
              </td>
              <td>{p.health.calls ? `${Math.round(p.health.success_rate * 100)}%` : '—'}</td>
              <td>{duration(p.health.latency_ms)}</td>
              <td>{p.health.in_flight}</td>
            </tr>
          ))}
        </Table>
      )}
    </Section>
  );
}

function Cache() {
  const { client } = useSession();
  const cache = useLoad(() => ok(client.GET('/api/v1/media/cache/stats')), []);
  const layers = cache.data ? Object.entries(cache.data.layers).filter(([, l]) => l) : [];
  return (
    <Section title="Result cache">
      <ErrorNote error={cache.error} />
      {cache.data && !cache.data.enabled && <p class="muted">The cache is off.</p>}
      {layers.length > 0 && (
        <table>
          <caption class="sr-only">Cache layers</caption>
          <thead>
            <tr>
              <th scope="col">Layer</th>
              <th scope="col">Hits</th>
              <th scope="col">Misses</th>
              <th scope="col">Entries</th>
              <th scope="col">Evictions</th>
            </tr>
          </thead>
          <tbody>
            {layers.map(([name, l]) => (
              <tr key={name}>
                <th scope="row">{name}</th>
                <td>{l.hits}</td>
                <td>{l.misses}</td>
                <td>{l.entries}</td>
                <td>{l.evictions}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

function ApiKeys() {
  const { client } = useSession();
  const keys = useLoad(() => ok(client.GET('/api/v1/api-keys')), []);
  const [owner, setOwner] = useState('');
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<Schemas['ApiKeyScope'][]>(['tasks']);
  const [created, setCreated] = useState<Schemas['ApiKeyCreatedDto']>();
  const [error, setError] = useState<Error>();
  const create = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      setCreated(await ok(client.POST('/api/v1/api-keys', { body: { owner, name, scopes } })));
      setName('');
      void keys.reload();
    } catch (err) {
      setError(err as Error);
    }
  };
  const revoke = async (id: string) => {
    setError(undefined);
    try {
      await ok(client.DELETE('/api/v1/api-keys/{id}', { params: { path: { id } } }));
      void keys.reload();
    } catch (err) {
      setError(err as Error);
    }
  };
  return (
    <Section title="API keys">
      <form class="inline-form" onSubmit={(e) => void create(e)}>
        <label>
          Owner (user id)
          <input required value={owner} onInput={(e) => setOwner(e.currentTarget.value)} />
        </label>
        <label>
          Name
          <input required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <fieldset>
          <legend>Scopes</legend>
          {SCOPES.map((s) => (
            <label key={s} class="check">
              <input
                type="checkbox"
                checked={scopes.includes(s)}
                onChange={(e) => setScopes(e.currentTarget.checked ? [...scopes, s] : scopes.filter((x) => x !== s))}
              />{' '}
              {s}
            </label>
          ))}
        </fieldset>
        <button type="submit">Create key</button>
      </form>
      <ErrorNote error={error} />
      {created && (
        <div class="notice" role="status">
          <p>
            The key of <strong>{created.name}</strong>, shown this once (only its hash is kept):
          </p>
          <output class="mono secret" data-testid="new-api-key">
            {created.key}
          </output>{' '}
          <button type="button" class="secondary" onClick={() => void navigator.clipboard?.writeText(created.key)}>
            Copy
          </button>
        </div>
      )}
      <ErrorNote error={keys.error} />
      {keys.data && (
        <Table caption="API keys" columns={['Name', 'Owner', 'Prefix', 'Scopes', 'Last used', 'State']}>
          {keys.data.map((k) => (
            <tr key={k.id}>
              <th scope="row">{k.name}</th>
              <td>{k.owner}</td>
              <td class="mono">{k.prefix}…</td>
              <td>{k.scopes.join(', ')}</td>
              <td>
                <When at={k.last_used_at} />
              </td>
              <td>
                {k.revoked_at ? (
                  <span class="muted">revoked</span>
                ) : (
                  <button type="button" class="danger" onClick={() => void revoke(k.id)}>
                    Revoke<span class="sr-only"> {k.name}</span>
                  </button>
                )}
              </td>
            </tr>
          ))}
        </Table>
      )}
    </Section>
  );
}

const KNOBS: [keyof Schemas['SandboxKnobsDto'], string, number][] = [
  ['latencyMs', 'Latency (ms)', 1],
  ['failureRate', 'Failure rate (0–1)', 0.01],
  ['rateLimitRate', '429 rate (0–1)', 0.01],
  ['stuckRate', 'Stuck rate (0–1)', 0.01],
  ['asyncSteps', 'Polls per async job', 1],
  ['clipMs', 'RunPod ms per clip', 1],
];

function SandboxKnobs() {
  const { client } = useSession();
  const state = useLoad(() => ok(client.GET('/api/v1/sandbox')), []);
  const [knobs, setKnobs] = useState<Record<string, string>>({});
  const [error, setError] = useState<Error>();
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    if (state.data) setKnobs(Object.fromEntries(Object.entries(state.data.knobs).map(([k, v]) => [k, String(v)])));
  }, [state.data]);
  // Outside the sandbox the route does not exist: nothing to show.
  if (state.error && (state.error as { status?: number }).status === 404) return null;
  const save = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setSaved(false);
    try {
      const body = Object.fromEntries(Object.entries(knobs).map(([k, v]) => [k, Number(v)]));
      await ok(client.PATCH('/api/v1/sandbox/knobs', { body }));
      setSaved(true);
      void state.reload();
    } catch (err) {
      setError(err as Error);
    }
  };
  return (
    <Section title="Sandbox">
      <ErrorNote error={state.error} />
      {state.data && (
        <form class="inline-form" onSubmit={(e) => void save(e)}>
          {KNOBS.filter(([k]) => k in state.data!.knobs).map(([k, label, step]) => (
            <label key={k}>
              {label}
              <input
                type="number"
                step={step}
                min={0}
                value={knobs[k] ?? ''}
                onInput={(e) => setKnobs({ ...knobs, [k]: e.currentTarget.value })}
              />
            </label>
          ))}
          <button type="submit">Apply knobs</button>
          {saved && (
            <span role="status" class="muted">
              Applied <When at={new Date().toISOString()} />
            </span>
          )}
        </form>
      )}
      <ErrorNote error={error} />
    </Section>
  );
}
