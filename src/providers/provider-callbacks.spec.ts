import { AppConfig } from '../config/app-config';
import { isValidCallback, providerCallbackUrl } from './provider-callbacks';

describe('provider callback URLs', () => {
  const config = AppConfig.fromEnv({ PUBLIC_URL: 'https://media.example.com/', JWT_SECRET: 'x'.repeat(40) });

  it('point at the platform, signed for one provider and one task', () => {
    const url = new URL(providerCallbackUrl(config, 'runpod', 'task-1')!);
    expect(`${url.origin}${url.pathname}`).toBe('https://media.example.com/api/v1/providers/runpod/callbacks/task-1');
    const sig = url.searchParams.get('sig');
    expect(isValidCallback(config, 'runpod', 'task-1', sig)).toBe(true);
    expect(isValidCallback(config, 'runpod', 'task-2', sig)).toBe(false);
    expect(isValidCallback(config, 'runway', 'task-1', sig)).toBe(false);
    expect(isValidCallback(config, 'runpod', 'task-1', `${sig}x`)).toBe(false);
    expect(isValidCallback(config, 'runpod', 'task-1', undefined)).toBe(false);
    const other = AppConfig.fromEnv({ PUBLIC_URL: 'https://media.example.com', JWT_SECRET: 'y'.repeat(40) });
    expect(isValidCallback(other, 'runpod', 'task-1', sig)).toBe(false);
  });

  it('are not made without PUBLIC_URL', () => {
    expect(providerCallbackUrl(AppConfig.fromEnv({}), 'runpod', 'task-1')).toBeUndefined();
  });
});
