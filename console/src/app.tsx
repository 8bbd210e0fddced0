import { useEffect, useMemo, useState } from 'preact/hooks';
import {
  apiClient,
  credentialsOf,
  identityOf,
  loadCredentials,
  saveCredentials,
  type Credentials,
  type TaskEvent,
} from './api';
import { SessionContext, type Live, type Session } from './context';
import { openEventStream } from './events';
import { href, useRoute } from './router';
import { AdminPage } from './pages/admin';
import { BatchesPage } from './pages/batches';
import { CreditsPage } from './pages/credits';
import { FlowsPage } from './pages/flows';
import { SignIn } from './pages/sign-in';
import { SubmitPage } from './pages/submit';
import { TaskPage } from './pages/task';
import { TasksPage } from './pages/tasks';
import { WebhooksPage } from './pages/webhooks';

const EVERYTHING_KEY = 'media-tasks.console.everything';

export function App() {
  const [credentials, setCredentials] = useState<Credentials | undefined>(loadCredentials);
  const [expired, setExpired] = useState(false);
  const signIn = (input: string) => {
    const next = credentialsOf(input);
    saveCredentials(next);
    setExpired(false);
    setCredentials(next);
  };
  if (!credentials) return <SignIn onSignIn={signIn} expired={expired} />;
  return (
    <Console
      key={credentials.value}
      credentials={credentials}
      onSignOut={(why) => {
        saveCredentials(undefined);
        setExpired(why === 'expired');
        setCredentials(undefined);
      }}
    />
  );
}

function Console({ credentials, onSignOut }: { credentials: Credentials; onSignOut: (why?: 'expired') => void }) {
  const identity = useMemo(() => identityOf(credentials), [credentials]);
  const [everything, setEverythingState] = useState(
    () => identity.admin && sessionStorage.getItem(EVERYTHING_KEY) === '1',
  );
  const [liveState, setLiveState] = useState<Live['state']>('connecting');
  const client = useMemo(() => apiClient(credentials, () => onSignOut('expired')), [credentials]);

  // One stream of every task event the viewer may see, shared by all pages.
  const hub = useMemo(() => {
    const listeners = new Set<(event: TaskEvent) => void>();
    const reopeners = new Set<() => void>();
    return { listeners, reopeners };
  }, []);
  useEffect(() => {
    const controller = new AbortController();
    const path = `/api/v1/media/events${everything ? '?scope=all' : ''}`;
    let opened = false;
    openEventStream(
      path,
      credentials,
      {
        onEvent: (event) => hub.listeners.forEach((listener) => listener(event)),
        onOpen: () => {
          if (opened) hub.reopeners.forEach((listener) => listener());
          opened = true;
        },
        onState: setLiveState,
      },
      controller.signal,
    );
    return () => controller.abort();
  }, [credentials, everything]);

  const session: Session = {
    client,
    credentials,
    user: identity.user,
    admin: identity.admin,
    everything,
    setEverything(on) {
      sessionStorage.setItem(EVERYTHING_KEY, on ? '1' : '0');
      setEverythingState(on);
    },
    live: {
      state: liveState,
      subscribe(listener) {
        hub.listeners.add(listener);
        return () => hub.listeners.delete(listener);
      },
      onReopen(listener) {
        hub.reopeners.add(listener);
        return () => hub.reopeners.delete(listener);
      },
    },
    signOut: () => onSignOut(),
  };
  const route = useRoute();
  return (
    <SessionContext.Provider value={session}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <Header route={route[0]} />
      <main id="main" tabIndex={-1}>
        <Page route={route} />
      </main>
    </SessionContext.Provider>
  );
}

const NAV: [string, string][] = [
  ['tasks', 'Tasks'],
  ['submit', 'Submit'],
  ['webhooks', 'Webhooks'],
  ['batches', 'Batches'],
  ['flows', 'Flows'],
  ['credits', 'Credits'],
];

function Header({ route }: { route: string }) {
  return (
    <SessionContext.Consumer>
      {(session) =>
        session && (
          <header class="top">
            <a class="brand" href={href('tasks')}>
              Media tasks
            </a>
            <nav aria-label="Main">
              <ul>
                {[...NAV, ...(session.admin ? [['admin', 'Admin'] as [string, string]] : [])].map(([path, label]) => (
                  <li key={path}>
                    <a href={href(path)} aria-current={route === path ? 'page' : undefined}>
                      {label}
                    </a>
                  </li>
                ))}
              </ul>
            </nav>
            <div class="who">
              <span class={`live live-${session.live.state}`} role="status" title="Live updates">
                {session.live.state === 'live' ? 'Live' : session.live.state}
              </span>
              {session.admin && (
                <label class="switch">
                  <input
                    type="checkbox"
                    checked={session.everything}
                    onChange={(e) => session.setEverything(e.currentTarget.checked)}
                  />
                  All users
                </label>
              )}
              <span class="user">
                {session.credentials.kind === 'key' ? 'API key' : (session.user ?? 'token')}
                {session.admin ? ' (admin)' : ''}
              </span>
              <button type="button" class="link" onClick={() => session.signOut()}>
                Sign out
              </button>
            </div>
          </header>
        )
      }
    </SessionContext.Consumer>
  );
}

function Page({ route }: { route: string[] }) {
  const [page, id] = route;
  switch (page) {
    case 'tasks':
      return id ? <TaskPage id={id} /> : <TasksPage />;
    case 'submit':
      return <SubmitPage type={id} />;
    case 'webhooks':
      return <WebhooksPage id={id} />;
    case 'batches':
      return <BatchesPage id={id} />;
    case 'flows':
      return <FlowsPage id={id} />;
    case 'credits':
      return <CreditsPage />;
    case 'admin':
      return <AdminPage />;
    default:
      return (
        <section>
          <h1>Not found</h1>
          <p>
            There is no page <code>{page}</code>. <a href={href('tasks')}>Go to tasks</a>.
          </p>
        </section>
      );
  }
}
