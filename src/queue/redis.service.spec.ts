import { AppConfig } from '../config/app-config';
import { RedisService } from './redis.service';

describe('RedisService', () => {
  const configFor = (backend: string) =>
    AppConfig.fromEnv({ NODE_ENV: 'test', QUEUE_BACKEND: backend, REDIS_URL: 'redis://127.0.0.1:6379' });

  it('never connects when the queues and shared state are on Postgres', async () => {
    const redis = new RedisService(configFor('postgres'));
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(redis.client.status).toBe('wait');
    } finally {
      await redis.onApplicationShutdown();
    }
  });

  it('connects at once on the Redis backend', async () => {
    const redis = new RedisService(configFor('redis'));
    try {
      if (redis.client.status !== 'ready') await new Promise((resolve) => redis.client.once('ready', resolve));
      expect(redis.isReady).toBe(true);
    } finally {
      await redis.onApplicationShutdown();
    }
  });
});
