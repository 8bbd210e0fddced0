import { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { JwtService } from '@nestjs/jwt';
import type { ApiKeysService } from '../api-keys/api-keys.service';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { ApiKeyScope } from '../api-keys/api-key-scopes';
import { API_KEY_SCOPE, IS_PUBLIC } from './auth.decorators';
import { AuthUser } from './auth.types';
import { JwtAuthGuard } from './jwt-auth.guard';
import { signToken } from './token';

const SECRET = 'unit-secret-0123456789abcdef0123456789abcdef';

function contextOf(request: object, isPublic = false, keyScope?: ApiKeyScope): ExecutionContext {
  const handler = () => undefined;
  if (isPublic) Reflect.defineMetadata(IS_PUBLIC, true, handler);
  if (keyScope) Reflect.defineMetadata(API_KEY_SCOPE, keyScope, handler);
  return {
    getHandler: () => handler,
    getClass: () => class {},
    switchToHttp: () => ({ getRequest: () => request }),
  } as unknown as ExecutionContext;
}

describe('JwtAuthGuard with X-API-Key', () => {
  const keyUser: AuthUser = { id: 'dave', roles: [], isAdmin: false };
  let authenticate: jest.Mock;
  let guard: JwtAuthGuard;

  beforeEach(() => {
    authenticate = jest.fn().mockResolvedValue(keyUser);
    guard = new JwtAuthGuard(new Reflector(), new JwtService({ secret: SECRET }), {
      authenticate,
    } as unknown as ApiKeysService);
  });

  it('authenticates a request with only an X-API-Key as the key owner, never an admin', async () => {
    const request: { headers: object; user?: AuthUser } = { headers: { 'x-api-key': 'mt_abc' } };
    await expect(guard.canActivate(contextOf(request))).resolves.toBe(true);
    expect(authenticate).toHaveBeenCalledWith('mt_abc');
    expect(request.user).toEqual({ id: 'dave', roles: [], isAdmin: false });
  });

  it('lets the Authorization header win: the key is not even looked up', async () => {
    const token = signToken(SECRET, { sub: 'alice', admin: true });
    const request: { headers: object; user?: AuthUser } = {
      headers: { authorization: `Bearer ${token}`, 'x-api-key': 'mt_abc' },
    };
    await expect(guard.canActivate(contextOf(request))).resolves.toBe(true);
    expect(authenticate).not.toHaveBeenCalled();
    expect(request.user).toEqual({ id: 'alice', roles: ['admin'], isAdmin: true });
  });

  it('passes on the 401 of an invalid key, and leaves public routes alone', async () => {
    authenticate.mockRejectedValue(new DomainException(ErrorCode.Unauthorized, 'invalid API key'));
    await expect(guard.canActivate(contextOf({ headers: { 'x-api-key': 'nope' } }))).rejects.toMatchObject({
      code: ErrorCode.Unauthorized,
      message: 'invalid API key',
    });
    await expect(guard.canActivate(contextOf({ headers: { 'x-api-key': 'nope' } }, true))).resolves.toBe(true);
    expect(authenticate).toHaveBeenCalledTimes(1);
  });

  it('still asks for credentials when there are none', async () => {
    await expect(guard.canActivate(contextOf({ headers: {} }))).rejects.toMatchObject({ code: ErrorCode.Unauthorized });
    expect(authenticate).not.toHaveBeenCalled();
  });

  it("opens a route to a key only within its scopes: the route's, else tasks; 403 names the missing one", async () => {
    const withScopes = (scopes: string[]) => authenticate.mockResolvedValue({ ...keyUser, scopes });
    const key = () => ({ headers: { 'x-api-key': 'mt_abc' } });

    withScopes(['queue:read']);
    await expect(guard.canActivate(contextOf(key()))).rejects.toMatchObject({
      code: ErrorCode.Forbidden,
      message: expect.stringContaining('lacks the scope tasks'),
    });
    await expect(guard.canActivate(contextOf(key(), false, ApiKeyScope.QueueRead))).resolves.toBe(true);
    await expect(guard.canActivate(contextOf(key(), false, ApiKeyScope.QueueWrite))).rejects.toMatchObject({
      code: ErrorCode.Forbidden,
      message: expect.stringContaining('lacks the scope queue:write'),
    });

    withScopes(['tasks']);
    await expect(guard.canActivate(contextOf(key()))).resolves.toBe(true);
    await expect(guard.canActivate(contextOf(key(), false, ApiKeyScope.QueueRead))).rejects.toMatchObject({
      message: expect.stringContaining('lacks the scope queue:read'),
    });

    withScopes(['queue:write']);
    await expect(guard.canActivate(contextOf(key(), false, ApiKeyScope.QueueRead))).resolves.toBe(true);
  });
});

describe('JwtAuthGuard with a token it has seen before', () => {
  afterEach(() => jest.useRealTimers());

  it('verifies a token once while it is valid, and refuses it as expired once its exp has passed', async () => {
    jest.useFakeTimers({ now: new Date('2030-01-01T00:00:00Z'), doNotFake: ['nextTick', 'setImmediate'] });
    const jwt = new JwtService({ secret: SECRET });
    const verify = jest.spyOn(jwt, 'verify');
    const guard = new JwtAuthGuard(new Reflector(), jwt, {} as unknown as ApiKeysService);
    const token = signToken(SECRET, { sub: 'alice', ttl: '60s' });
    const request = () => ({ headers: { authorization: `Bearer ${token}` } }) as { headers: object; user?: AuthUser };

    for (let i = 0; i < 3; i++) {
      const r = request();
      await expect(guard.canActivate(contextOf(r))).resolves.toBe(true);
      expect(r.user).toEqual({ id: 'alice', roles: [], isAdmin: false });
    }
    expect(verify).toHaveBeenCalledTimes(1);

    jest.setSystemTime(new Date('2030-01-01T00:01:00Z'));
    await expect(guard.canActivate(contextOf(request()))).rejects.toMatchObject({
      code: ErrorCode.Unauthorized,
      message: 'token expired',
    });
    // Another token signed with a wrong secret is never taken from what was verified.
    const forged = signToken('another-secret-0123456789abcdef0123456789', { sub: 'alice' });
    await expect(
      guard.canActivate(contextOf({ headers: { authorization: `Bearer ${forged}` } })),
    ).rejects.toMatchObject({ code: ErrorCode.Unauthorized, message: 'invalid token' });
  });
});
