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

describe('RedisService on the Redis backend', () => {
  it('sends the commands of one event-loop turn in one write', async () => {
    const config = AppConfig.fromEnv({
      NODE_ENV: 'test',
      QUEUE_BACKEND: 'redis',
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_PREFIX: `t${process.pid}w`,
    });
    const redis = new RedisService(config);
    const key = redis.key('writes');
    try {
      if (redis.client.status !== 'ready') await new Promise((resolve) => redis.client.once('ready', resolve));
      const stream = (redis.client as unknown as { stream: { write: (...args: unknown[]) => boolean } }).stream;
      const write = jest.spyOn(stream, 'write');
      const answers = await Promise.all(Array.from({ length: 20 }, () => redis.client.incr(key)));
      expect(answers.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(write).toHaveBeenCalledTimes(1);
    } finally {
      await redis.client.del(key);
      await redis.onApplicationShutdown();
    }
  });
});
