import { useState } from 'preact/hooks';
import { apiErrorOf, authHeaders, credentialsOf } from '../api';

/** Asks for a token or an API key, and checks it with the server before keeping it. */
export function SignIn({ onSignIn, expired }: { onSignIn: (input: string) => void; expired: boolean }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState(expired ? 'Your session has ended: sign in again.' : '');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!value.trim()) return setError('Paste a token or an API key.');
    setBusy(true);
    setError('');
    try {
      const res = await fetch('/api/v1/media/tasks?limit=1', { headers: authHeaders(credentialsOf(value)) });
      if (!res.ok) {
        const err = apiErrorOf(res.status, await res.json().catch(() => undefined));
        setError(res.status === 401 ? `Not accepted: ${err.message}` : err.message);
        return;
      }
      onSignIn(value);
    } catch {
      setError('The platform does not answer. Is it running?');
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="sign-in" id="main">
      <h1>Media tasks console</h1>
      <form onSubmit={submit} aria-describedby="sign-in-help">
        <label for="credential">Token or API key</label>
        <input
          id="credential"
          name="credential"
          type="password"
          autoComplete="off"
          spellcheck={false}
          value={value}
          onInput={(e) => setValue(e.currentTarget.value)}
          aria-invalid={error ? true : undefined}
          aria-errormessage={error ? 'sign-in-error' : undefined}
        />
        {error && (
          <p id="sign-in-error" class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
      <div id="sign-in-help" class="help">
        <p>
          Make a token on the machine that runs the platform: <code>npm run token -- --sub alice</code> (add{' '}
          <code>--admin</code> for the admin pages). An API key works too.
        </p>
        <p>It is kept in this tab only, until you sign out or close it.</p>
      </div>
    </main>
  );
}
