import { AppConfig } from './app-config';
import { isLoopback, listenAddress } from './listen-address';

const OWN_SECRET = 'an-own-secret-0123456789abcdef0123456789';

describe('listenAddress', () => {
  it('keeps HOST once JWT_SECRET is set, and says nothing', () => {
    for (const host of ['0.0.0.0', '::', '10.0.0.5', '127.0.0.1']) {
      expect(listenAddress(AppConfig.fromEnv({ HOST: host, JWT_SECRET: OWN_SECRET }))).toEqual({ host });
    }
  });

  it('listens on 127.0.0.1 with the development secret and a HOST that is not loopback, and says why', () => {
    for (const host of ['0.0.0.0', '::', '10.0.0.5', 'media.example.com']) {
      const { host: bound, notice } = listenAddress(AppConfig.fromEnv({ HOST: host }));
      expect(bound).toBe('127.0.0.1');
      expect(notice).toContain(`not HOST=${host}`);
      expect(notice).toContain('JWT_SECRET');
      expect(notice).not.toContain('\n');
    }
    // The schema's default HOST is 0.0.0.0: a fresh machine serves on loopback.
    expect(listenAddress(AppConfig.fromEnv({})).host).toBe('127.0.0.1');
  });

  it('keeps a loopback HOST with the development secret, and still says it is loopback only', () => {
    for (const host of ['127.0.0.1', 'localhost', '::1', '127.0.0.2']) {
      const { host: bound, notice } = listenAddress(AppConfig.fromEnv({ HOST: host }));
      expect(bound).toBe(host);
      expect(notice).toMatch(/loopback only/);
    }
  });

  it('knows loopback addresses in their forms', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1', 'LOCALHOST'].map(isLoopback)).toEqual(
      Array(6).fill(true),
    );
    expect(['0.0.0.0', '::', '192.168.1.2', 'example.com', ''].map(isLoopback)).toEqual(Array(5).fill(false));
  });
});
