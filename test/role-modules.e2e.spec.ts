import { join } from 'node:path';
import { createTestDatabase, dropTestDatabase, REDIS_URL } from './support/databases';
import { PlatformProcess } from './support/platform-process';
import { deleteRedisKeys, freePort } from './support/test-app';

const PRELOAD = join(__dirname, 'support', 'loaded-modules.js');

/**
 * What only the API role uses (@nestjs/swagger's decorators stay: the DTOs both roles share carry them): Swagger's
 * document and UI, the queue dashboard, the console's files, multipart.
 */
const API_ONLY = [
  '/node_modules/swagger-ui-dist/',
  '/node_modules/@bull-board/',
  '/node_modules/@fastify/static/',
  '/node_modules/@fastify/multipart/',
  '/src/api-http.ts',
  '/src/api-http.module.ts',
  '/src/openapi/openapi-document.ts',
  '/src/tasks/tasks.controller.ts',
];
/** What only a worker running some tasks uses, on first use: sharp, and the AWS SDK (OUTPUT_STORAGE=s3 only). */
const ON_FIRST_USE = ['/node_modules/sharp/', '/node_modules/@aws-sdk/'];
/** What only the worker role uses: the processors. */
const WORKER_ONLY = ['/src/worker.module.ts', '/src/processing/task.processor.ts'];

/**
 * Each role loads only what it uses (the rest costs memory in every process of the role): the files a platform
 * process has required once booted, read from Node's own module cache in a real process (Jest's registry would hide
 * what Node loads).
 */
describe('the modules each role loads', () => {
  const redisPrefix = `rolemods${process.pid}`;
  let database: { name: string; url: string };
  const processes: PlatformProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await Promise.all(processes.map((child) => child.kill()));
    await dropTestDatabase(database.name);
    await deleteRedisKeys(redisPrefix);
  });

  /** Boots a process of `role` and answers the files it has loaded. */
  const loaded = async (role: string): Promise<string[]> => {
    const port = await freePort();
    const child = PlatformProcess.spawn({
      APP_ROLE: role,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: database.url,
      REDIS_URL,
      REDIS_PREFIX: redisPrefix,
      NODE_OPTIONS: `--require ${PRELOAD}`,
    });
    processes.push(child);
    await child.waitForHttp(`http://127.0.0.1:${port}/health/live`);
    child.child.kill('SIGUSR2');
    await child.waitForOutput(/loaded-modules: .*\n/);
    const files = JSON.parse(/loaded-modules: (.*)\n/.exec(child.output)![1]) as string[];
    await child.kill();
    return files;
  };
  const matching = (files: string[], parts: string[]) => files.filter((f) => parts.some((part) => f.includes(part)));
  const missing = (files: string[], parts: string[]) => parts.filter((part) => !files.some((f) => f.includes(part)));

  it('a worker loads no route, Swagger, dashboard, console or multipart, nor sharp and the AWS SDK before use', async () => {
    const files = await loaded('worker');
    // The check can fail: the worker's own half is there.
    expect(missing(files, WORKER_ONLY)).toEqual([]);
    expect(matching(files, [...API_ONLY, ...ON_FIRST_USE])).toEqual([]);
  }, 90_000);

  it('an API process loads no processor, nor sharp and the AWS SDK', async () => {
    const files = await loaded('api');
    expect(
      missing(files, ['/src/api-http.ts', '/node_modules/@bull-board/', '/src/tasks/tasks.controller.ts']),
    ).toEqual([]);
    expect(matching(files, [...WORKER_ONLY, ...ON_FIRST_USE])).toEqual([]);
  }, 90_000);

  it('an all-in-one process loads both halves, still not sharp or the AWS SDK before use', async () => {
    const files = await loaded('all');
    expect(missing(files, [...WORKER_ONLY, '/src/api-http.ts', '/node_modules/@bull-board/'])).toEqual([]);
    expect(matching(files, ON_FIRST_USE)).toEqual([]);
  }, 90_000);
});
