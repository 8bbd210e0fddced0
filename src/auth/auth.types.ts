export interface AuthUser {
  id: string;
  roles: string[];
  isAdmin: boolean;
  /** Set when an API key authenticated the request: what the key may do (see ApiKeyScope). Tokens have none. */
  scopes?: readonly string[];
}

export interface TokenClaims {
  sub: string;
  roles?: string[];
  /** Set on limited tokens (see scoped-token.ts): they open only the routes that accept this scope. */
  scope?: string;
  /** The one task a scoped token is good for. */
  task?: string;
  /** Expiry, epoch seconds: required (a token without it is refused). */
  exp?: number;
}
