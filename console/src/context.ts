import { createContext } from 'preact';
import { useContext, useEffect, useRef } from 'preact/hooks';
import type { Client, Credentials, TaskEvent } from './api';

export interface Live {
  /** Calls `listener` with every task event of the stream; answers the unsubscribe. */
  subscribe(listener: (event: TaskEvent) => void): () => void;
  /** Calls `listener` each time the stream reopens (events may have been missed: re-read). */
  onReopen(listener: () => void): () => void;
  state: 'connecting' | 'live' | 'reconnecting' | 'closed';
}

export interface Session {
  client: Client;
  credentials: Credentials;
  user?: string;
  admin: boolean;
  /** An admin looking at every user's things (`scope=all`), not only their own. */
  everything: boolean;
  setEverything(on: boolean): void;
  live: Live;
  signOut(): void;
}

export const SessionContext = createContext<Session | undefined>(undefined);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in page');
  return session;
}

/** The `scope` query of list endpoints, from the session's choice. */
export function scopeOf(session: Session): { scope?: 'all' } {
  return session.everything ? { scope: 'all' } : {};
}

/** Runs `listener` on each live event while the component is mounted (the latest listener, without resubscribing). */
export function useTaskEvents(listener: (event: TaskEvent) => void, onReopen?: () => void): void {
  const { live } = useSession();
  const latest = useRef(listener);
  latest.current = listener;
  const reopen = useRef(onReopen);
  reopen.current = onReopen;
  useEffect(() => {
    const off = live.subscribe((event) => latest.current(event));
    const offReopen = live.onReopen(() => reopen.current?.());
    return () => {
      off();
      offReopen();
    };
  }, [live]);
}
