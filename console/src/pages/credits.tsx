import { ok } from '../api';
import { ErrorNote, Section, shortId, Table, useLoad, When } from '../components/ui';
import { useSession } from '../context';
import { href } from '../router';

export function CreditsPage() {
  const { client } = useSession();
  const credits = useLoad(() => ok(client.GET('/api/v1/credits', { params: { query: { limit: 50 } } })), []);
  const c = credits.data;
  return (
    <section>
      <h1>Credits</h1>
      <ErrorNote error={credits.error} />
      {c && (
        <>
          <p class="balance">
            Balance <strong>{c.balance}</strong>
          </p>
          <Section title="Ledger">
            {c.entries.length === 0 && <p class="empty">No entries yet.</p>}
            {c.entries.length > 0 && (
              <Table caption="Credit entries, newest first" columns={['When', 'Kind', 'Amount', 'Reason', 'Task']}>
                {c.entries.map((e) => (
                  <tr key={e.id}>
                    <td>
                      <When at={e.created_at} />
                    </td>
                    <td>{e.kind}</td>
                    <td>{e.amount}</td>
                    <td>{e.reason}</td>
                    <td>
                      {e.task_id ? (
                        <a href={href(`tasks/${e.task_id}`)} class="mono">
                          {shortId(e.task_id)}
                        </a>
                      ) : (
                        '—'
                      )}
                    </td>
                  </tr>
                ))}
              </Table>
            )}
          </Section>
        </>
      )}
    </section>
  );
}
