export interface AuthUser {
  id: string;
  roles: string[];
  isAdmin: boolean;
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
