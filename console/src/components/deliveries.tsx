import { useState } from 'preact/hooks';
import { ok, type Delivery } from '../api';
import { useSession } from '../context';
import { href } from '../router';
import { duration, ErrorNote, shortId, Status, Table, When } from './ui';

/** Deliveries with every attempt; failed and dead ones can be sent again (same webhook-id). */
export function DeliveryList({ deliveries, onReplayed }: { deliveries: Delivery[]; onReplayed: () => void }) {
  const { client } = useSession();
  const [error, setError] = useState<Error>();
  const [replayed, setReplayed] = useState<Set<string>>(new Set());
  const replay = async (id: string) => {
    setError(undefined);
    try {
      await ok(client.POST('/api/v1/media/webhooks/{id}/replay', { params: { path: { id } } }));
      setReplayed((s) => new Set(s).add(id));
      onReplayed();
    } catch (err) {
      setError(err as Error);
    }
  };
  if (deliveries.length === 0) return <p class="muted">No deliveries.</p>;
  return (
    <div>
      <ErrorNote error={error} />
      <ul class="deliveries">
        {deliveries.map((d) => (
          <li key={d.id} class="delivery" data-delivery-id={d.id} data-status={d.status}>
            <div class="delivery-head">
              <Status status={d.status} />
              <strong>{d.event_type}</strong>
              <span class="mono url">{d.url}</span>
              {d.task_id && (
                <a href={href(`tasks/${d.task_id}`)} class="mono">
                  task {shortId(d.task_id)}
                </a>
              )}
              {(d.status === 'dead' || d.status === 'failed') && (
                <button type="button" onClick={() => void replay(d.id)} disabled={replayed.has(d.id)}>
                  {replayed.has(d.id) ? 'Replay queued' : 'Replay'}
                </button>
              )}
            </div>
            <p class="muted">
              Made <When at={d.created_at} />
              {d.delivered_at && (
                <>
                  {' '}
                  · delivered <When at={d.delivered_at} />
                </>
              )}
              {d.next_attempt_at && (
                <>
                  {' '}
                  · next attempt <When at={d.next_attempt_at} />
                </>
              )}
            </p>
            {d.attempts.length > 0 && (
              <Table
                class="attempts"
                caption={`Attempts of delivery ${shortId(d.id)}`}
                columns={['#', 'At', 'Answer', 'Took', 'Error']}
              >
                {d.attempts.map((a, i) => (
                  <tr key={a.at}>
                    <td>{i + 1}</td>
                    <td>
                      <When at={a.at} />
                    </td>
                    <td>{a.status_code ?? '—'}</td>
                    <td>{duration(a.duration_ms)}</td>
                    <td>{a.error ?? a.response_excerpt ?? ''}</td>
                  </tr>
                ))}
              </Table>
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}
