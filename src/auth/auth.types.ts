export interface AuthUser {
  id: string;
  roles: string[];
  isAdmin: boolean;
}

export interface TokenClaims {
  sub: string;
  roles?: string[];
}
