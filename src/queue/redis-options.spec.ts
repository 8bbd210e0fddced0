import Redis, { Cluster } from 'ioredis';
import { connectRedis } from './redis-options';

describe('connectRedis', () => {
  it('makes one client of REDIS_URL, or a cluster client seeded by it that gives every node its credentials', () => {
    const single = connectRedis('redis://u:p%40ss@10.0.0.1:7000/3', false, { lazyConnect: true });
    expect(single).toBeInstanceOf(Redis);
    expect((single as Redis).options).toMatchObject({ host: '10.0.0.1', port: 7000, db: 3, password: 'p@ss' });
    single.disconnect();

    const cluster = connectRedis('rediss://u:p%40ss@10.0.0.1:7000', true, { lazyConnect: true, connectionName: 'x' });
    expect(cluster).toBeInstanceOf(Cluster);
    const { redisOptions, lazyConnect } = (cluster as Cluster).options;
    expect(lazyConnect).toBe(true);
    expect(redisOptions).toMatchObject({ username: 'u', password: 'p@ss', tls: {}, connectionName: 'x' });
    expect(redisOptions).not.toHaveProperty('db');
    cluster.disconnect();
  });
});
