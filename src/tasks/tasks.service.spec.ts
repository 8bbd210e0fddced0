import { randomUUID } from 'node:crypto';
import { AuthUser } from '../auth/auth.types';
import {
  DependencyUnavailableException,
  DomainException,
  ErrorCode,
  FieldProblem,
  ValidationException,
} from '../common/domain-exception';
import { CreditsRepository } from '../credits/credits.repository';
import { AppConfig } from '../config/app-config';
import { ProviderRegistry } from '../providers/provider.registry';
import { TaskSignalsService } from '../queue/task-signals.service';
import { QueueGateway } from '../queue/queue.gateway';
import { MediaUrlGuard, UrlGuard } from '../security/url-guard';
import { StorageService } from '../storage/storage.service';
import { UploadsService } from '../uploads/uploads.service';
import { TaskCreateBaseDto } from './dto/task-create-base.dto';
import { TaskEntity } from './entities/task.entity';
import { isTerminal, TaskPriority, TaskStatus, TaskType } from './task.enums';
import { TaskStateMachine } from './task-state-machine';
import { TasksRepository } from './tasks.repository';
import { TasksService } from './tasks.service';

const alice: AuthUser = { id: 'alice', roles: [], isAdmin: false };
const bob: AuthUser = { id: 'bob', roles: [], isAdmin: false };
const admin: AuthUser = { id: 'root', roles: ['admin'], isAdmin: true };

/** The tasks table in memory, with the repository methods the service calls. */
class FakeTasksRepository {
  readonly rows = new Map<string, TaskEntity>();
  readonly plainInserts: TaskEntity[] = [];
  transactions = 0;

  insert = jest.fn((task: TaskEntity) => {
    this.plainInserts.push(task);
    return Promise.resolve(this.store(task));
  });

  insertOn = jest.fn((_runner: unknown, task: TaskEntity) => Promise.resolve(this.store(task)));

  /** Rows written inside `work` are kept only when it resolves, as a rolled-back transaction would. */
  transaction = jest.fn(async <T>(work: (runner: unknown) => Promise<T>): Promise<T> => {
    this.transactions++;
    const before = new Map(this.rows);
    try {
      return await work({ fake: 'runner' });
    } catch (err) {
      this.rows.clear();
      for (const [id, row] of before) this.rows.set(id, row);
      throw err;
    }
  });

  lockAndCountActive = jest.fn((_runner: unknown, userId: string) =>
    Promise.resolve([...this.rows.values()].filter((t) => t.userId === userId && !isTerminal(t.status)).length),
  );

  findOwned = jest.fn((id: string, userId?: string) => {
    const row = this.rows.get(id);
    return Promise.resolve(row && (userId === undefined || row.userId === userId) ? copy(row) : null);
  });

  findById = jest.fn((id: string) => Promise.resolve(this.rows.has(id) ? copy(this.rows.get(id)!) : null));

  findParts = jest.fn((parentId: string) =>
    Promise.resolve([...this.rows.values()].filter((t) => t.parentId === parentId).map(copy)),
  );

  queuePosition = jest.fn(() => Promise.resolve(7));

  list = jest.fn((query: { userId?: string; limit: number }) => {
    const rows = [...this.rows.values()].filter((t) => query.userId === undefined || t.userId === query.userId);
    return Promise.resolve({ rows: rows.slice(0, query.limit).map(copy), hasMore: rows.length > query.limit });
  });

  add(init: Partial<TaskEntity> & { userId: string }): TaskEntity {
    const task = TaskEntity.create({ id: randomUUID(), type: TaskType.ImageGeneration, input: {}, ...init });
    this.rows.set(task.id, task);
    return task;
  }

  private store(task: TaskEntity): { deliveryId: string | null } {
    this.rows.set(task.id, copy(task));
    return { deliveryId: task.webhookUrl ? `delivery-of-${task.id}` : null };
  }
}

/** The transitions the service asks for, applied to the fake table with the same "from" rules. */
function fakeStateMachine(repo: FakeTasksRepository) {
  const move = (id: string, to: TaskStatus, from: (s: TaskStatus) => boolean) => {
    const row = repo.rows.get(id);
    if (!row || !from(row.status)) return Promise.resolve(null);
    row.status = to;
    return Promise.resolve(copy(row));
  };
  return {
    announceCreated: jest.fn(),
    cancel: jest.fn((id: string) => move(id, TaskStatus.Cancelled, (s) => !isTerminal(s))),
    retry: jest.fn((id: string) =>
      move(id, TaskStatus.Queued, (s) => s === TaskStatus.Failed || s === TaskStatus.Cancelled),
    ),
  };
}

function setup(env: Record<string, string> = {}) {
  const config = AppConfig.fromEnv({ NODE_ENV: 'test', ...env });
  const repo = new FakeTasksRepository();
  const stateMachine = fakeStateMachine(repo);
  const redis = { up: true };
  /** Jobs a worker holds: BullMQ does not remove those. */
  const lockedJobs = new Set<string>();
  const queue = {
    assertAvailable: jest.fn((): void => {
      if (!redis.up) throw new DependencyUnavailableException('redis');
    }),
    enqueueTaskOrDefer: jest.fn((_task: { id: string; priority: TaskPriority }) => Promise.resolve(true)),
    removeTaskJob: jest.fn((id: string) => Promise.resolve(!lockedJobs.has(id))),
    promoteTaskJob: jest.fn((_id: string) => Promise.resolve()),
  };
  const signals = { publishCancel: jest.fn((_id: string) => Promise.resolve()) };
  const known = new Set(['openai', 'stability']);
  const objections: FieldProblem[] = [];
  const providers = {
    has: jest.fn((name: string) => known.has(name)),
    submitProblems: jest.fn((): FieldProblem[] => objections),
    /** The tasks first in the lines a task leaves. */
    abandon: jest.fn((_task: TaskEntity): Promise<string[]> => Promise.resolve([])),
  };
  const storage = { signedUrl: jest.fn((key: string) => Promise.resolve(`https://files.test/${key}?sig=fresh`)) };
  const service = new TasksService(
    repo as unknown as TasksRepository,
    stateMachine as unknown as TaskStateMachine,
    queue as unknown as QueueGateway,
    signals as unknown as TaskSignalsService,
    providers as unknown as ProviderRegistry,
    storage as unknown as StorageService,
    new UrlGuard(false),
    new MediaUrlGuard(false),
    config,
    { enabled: false } as unknown as CreditsRepository,
    { problemsOf: jest.fn(() => Promise.resolve([])) } as unknown as UploadsService,
  );
  return { service, repo, stateMachine, queue, redis, lockedJobs, signals, providers, objections, storage };
}

function copy(task: TaskEntity): TaskEntity {
  return Object.assign(new TaskEntity(), structuredClone({ ...task }));
}

function dto(fields: Record<string, unknown>): TaskCreateBaseDto {
  return fields;
}

async function rejection(promise: Promise<unknown>): Promise<DomainException> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof DomainException)) throw new Error(`expected a DomainException, got ${String(err)}`);
  return err;
}

async function problemsOf(promise: Promise<unknown>): Promise<FieldProblem[]> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(ValidationException);
  expect(err.code).toBe(ErrorCode.ValidationFailed);
  return (err as ValidationException).problems;
}

describe('TasksService', () => {
  describe('submit', () => {
    it('writes a queued task of the user with only its own input, then announces it and enqueues it', async () => {
      const { service, repo, stateMachine, queue } = setup();
      const answer = await service.create(
        alice,
        TaskType.ImageGeneration,
        dto({
          prompt: 'a lighthouse',
          size: '512x512',
          model: 'best',
          priority: TaskPriority.High,
          provider: 'openai',
          metadata: { order: 42 },
          webhook_url: 'https://hooks.example.com/media',
          webhook_secret: 'task-own-secret-0123456789',
          style: undefined,
        }),
      );

      const stored = repo.rows.get(answer.id)!;
      expect(stored).toMatchObject({
        userId: 'alice',
        type: TaskType.ImageGeneration,
        status: TaskStatus.Queued,
        priority: TaskPriority.High,
        // "best" pins no model and the common fields are options, not input.
        input: { prompt: 'a lighthouse', size: '512x512' },
        options: { provider: 'openai' },
        metadata: { order: 42 },
        webhookUrl: 'https://hooks.example.com/media',
        webhookSecret: 'task-own-secret-0123456789',
      });
      expect(answer).toMatchObject({ id: stored.id, status: TaskStatus.Queued, priority: TaskPriority.High });
      expect(JSON.stringify(answer)).not.toContain('task-own-secret');

      // Announced with its task.created delivery, and the announced task carries no secret either.
      expect(stateMachine.announceCreated).toHaveBeenCalledTimes(1);
      const [announced, deliveryId] = stateMachine.announceCreated.mock.calls[0] as [TaskEntity, string | null];
      expect(announced.id).toBe(stored.id);
      expect(announced.webhookSecret).toBeUndefined();
      expect(deliveryId).toBe(`delivery-of-${stored.id}`);
      expect(queue.enqueueTaskOrDefer).toHaveBeenCalledWith(
        expect.objectContaining({ id: stored.id, priority: TaskPriority.High }),
        { delay: undefined },
      );
      expect(stateMachine.announceCreated.mock.invocationCallOrder[0]).toBeLessThan(
        queue.enqueueTaskOrDefer.mock.invocationCallOrder[0],
      );
    });

    it('gives a task without a priority the medium one, and takes the id it is handed', async () => {
      const { service, repo } = setup();
      const id = randomUUID();
      const answer = await service.create(alice, TaskType.ImageGeneration, dto({ prompt: 'x' }), { id });
      expect(answer.id).toBe(id);
      expect(repo.rows.get(id)!.priority).toBe(TaskPriority.Medium);
    });

    it('refuses an unknown provider, naming the field, and writes nothing', async () => {
      const { service, repo, queue } = setup();
      const problems = await problemsOf(
        service.create(alice, TaskType.ImageGeneration, dto({ prompt: 'x', provider: 'nobody' })),
      );
      expect(problems).toEqual([{ field: 'provider', message: 'provider "nobody" is unknown' }]);
      expect(repo.rows.size).toBe(0);
      expect(queue.enqueueTaskOrDefer).not.toHaveBeenCalled();
    });

    it('lists every URL the platform may not fetch, by its path in the input, and the webhook URL', async () => {
      const { service, repo } = setup();
      const problems = await problemsOf(
        service.create(
          alice,
          TaskType.Img2Vid,
          dto({
            images: [
              { id: 'a', image_url: 'https://cdn.example.com/a.jpg', duracao: 2 },
              { id: 'b', image_url: 'http://127.0.0.1/b.jpg', duracao: 2 },
            ],
            webhook_url: 'http://10.0.0.8/hook',
            webhook_secret: 'task-own-secret-0123456789',
          }),
        ),
      );
      expect(problems.map((p) => p.field)).toEqual(['images[1].image_url', 'webhook_url']);
      expect(problems[0].message).toMatch(/^images\[1\]\.image_url /);
      expect(repo.rows.size).toBe(0);
    });

    it("answers the providers' objections to the input as field problems", async () => {
      const { service, providers, objections, repo } = setup();
      objections.push({ field: 'size', message: 'size: 1024x1792 is not a size dall-e-2 makes' });
      const problems = await problemsOf(
        service.create(alice, TaskType.ImageGeneration, dto({ prompt: 'x', size: '1024x1792', provider: 'openai' })),
      );
      expect(problems).toEqual(objections);
      expect(providers.submitProblems).toHaveBeenCalledWith(
        { type: TaskType.ImageGeneration, input: { prompt: 'x', size: '1024x1792' } },
        { provider: 'openai' },
      );
      expect(repo.rows.size).toBe(0);
    });

    it('needs a secret to sign webhooks with: the task its own, or the deployment one, unless signing is off', async () => {
      const unsigned = dto({ prompt: 'x', webhook_url: 'https://hooks.example.com/a' });
      const problems = await problemsOf(setup().service.create(alice, TaskType.ImageGeneration, unsigned));
      expect(problems.map((p) => p.field)).toEqual(['webhook_secret']);

      const deploymentSecret: Record<string, string> = { WEBHOOK_SECRET: 'deployment-secret-0123456789abcdef' };
      for (const env of [deploymentSecret, { WEBHOOK_REQUIRE_SIGNATURE: 'false' }]) {
        const { service, repo } = setup(env);
        const answer = await service.create(alice, TaskType.ImageGeneration, unsigned);
        expect(repo.rows.get(answer.id)!.webhookSecret).toBeNull();
      }
    });

    it('answers 503 before writing anything when Redis is down', async () => {
      const { service, repo, redis } = setup();
      redis.up = false;
      const err = await rejection(service.create(alice, TaskType.ImageGeneration, dto({ prompt: 'x' })));
      expect(err).toBeInstanceOf(DependencyUnavailableException);
      expect(err.code).toBe(ErrorCode.DependencyUnavailable);
      expect(repo.insert).not.toHaveBeenCalled();
      expect(repo.transaction).not.toHaveBeenCalled();
    });

    it('without a quota, one task is one plain insert (no transaction, no count)', async () => {
      const { service, repo } = setup({ QUOTA_MAX_ACTIVE_TASKS: '0' });
      await service.create(alice, TaskType.ImageGeneration, dto({ prompt: 'x' }));
      expect(repo.plainInserts).toHaveLength(1);
      expect(repo.transactions).toBe(0);
      expect(repo.lockAndCountActive).not.toHaveBeenCalled();
    });

    it("with a quota, counts the user's unfinished tasks under the user's lock and refuses what would pass it", async () => {
      const { service, repo, queue } = setup({ QUOTA_MAX_ACTIVE_TASKS: '2' });
      repo.add({ userId: 'alice', status: TaskStatus.Processing });
      repo.add({ userId: 'alice', status: TaskStatus.Completed });
      repo.add({ userId: 'bob', status: TaskStatus.Queued });
      repo.add({ userId: 'bob', status: TaskStatus.Queued });

      await service.create(alice, TaskType.ImageGeneration, dto({ prompt: 'fits' }));
      expect(repo.lockAndCountActive).toHaveBeenLastCalledWith({ fake: 'runner' }, 'alice');
      expect(repo.plainInserts).toHaveLength(0);

      const err = await rejection(service.create(alice, TaskType.ImageGeneration, dto({ prompt: 'one too many' })));
      expect(err.code).toBe(ErrorCode.QuotaExceeded);
      expect(err.details).toEqual({ active: 2, limit: 2 });
      expect([...repo.rows.values()].filter((t) => t.userId === 'alice')).toHaveLength(3);
      expect(queue.enqueueTaskOrDefer).toHaveBeenCalledTimes(1);

      // Another user's tasks are theirs to count.
      await expect(service.create(bob, TaskType.ImageGeneration, dto({ prompt: 'x' }))).rejects.toMatchObject({
        code: ErrorCode.QuotaExceeded,
        details: { active: 2, limit: 2 },
      });
    });

    it('submits several tasks all or none: a batch that would pass the quota writes nothing, not even its own row', async () => {
      const { service, repo, stateMachine, queue } = setup({ QUOTA_MAX_ACTIVE_TASKS: '3' });
      repo.add({ userId: 'alice', status: TaskStatus.Queued });
      const prepared = () =>
        [1, 2, 3].map((i) => service.prepare(alice, TaskType.ImageGeneration, dto({ prompt: `p${i}` })));
      const first = jest.fn(() => Promise.resolve());

      const err = await rejection(service.createMany(alice, prepared(), first));
      expect(err.details).toEqual({ active: 1, limit: 3 });
      expect(first).not.toHaveBeenCalled();
      expect(repo.rows.size).toBe(1);
      expect(stateMachine.announceCreated).not.toHaveBeenCalled();

      const two = prepared().slice(0, 2);
      await service.createMany(alice, two, first);
      expect(first).toHaveBeenCalledTimes(1);
      expect(repo.insertOn).toHaveBeenCalledTimes(2);
      expect(queue.enqueueTaskOrDefer.mock.calls.map(([t]: [{ id: string }]) => t.id)).toEqual(two.map((t) => t.id));
    });

    it('rolls back the batch row and every task when one insert fails', async () => {
      const { service, repo, queue } = setup();
      const tasks = [1, 2].map((i) => service.prepare(alice, TaskType.ImageGeneration, dto({ prompt: `p${i}` })));
      repo.insertOn.mockImplementationOnce((_r, task: TaskEntity) => {
        repo.rows.set(task.id, task);
        return Promise.resolve({ deliveryId: null });
      });
      repo.insertOn.mockImplementationOnce(() => Promise.reject(new Error('duplicate key')));
      await expect(service.createMany(alice, tasks, () => Promise.resolve())).rejects.toThrow('duplicate key');
      expect(repo.rows.size).toBe(0);
      expect(queue.enqueueTaskOrDefer).not.toHaveBeenCalled();
    });
  });

  describe('cancel', () => {
    it('cancels a queued task: its job is removed, its provider job abandoned, no stop signal needed', async () => {
      const { service, repo, queue, signals, providers } = setup();
      const task = repo.add({ userId: 'alice', status: TaskStatus.Queued });
      const answer = await service.cancel(alice, task.id);
      expect(answer.status).toBe(TaskStatus.Cancelled);
      expect(repo.rows.get(task.id)!.status).toBe(TaskStatus.Cancelled);
      expect(queue.removeTaskJob).toHaveBeenCalledWith(task.id);
      expect(signals.publishCancel).not.toHaveBeenCalled();
      expect(providers.abandon).toHaveBeenCalledWith(expect.objectContaining({ id: task.id }));
    });

    it('runs at once the tasks that were behind the cancelled one in a capped provider’s line', async () => {
      const { service, repo, queue, providers } = setup();
      const task = repo.add({ userId: 'alice', status: TaskStatus.Queued });
      providers.abandon.mockResolvedValueOnce(['next-in-line']);
      await service.cancel(alice, task.id);
      expect(queue.promoteTaskJob.mock.calls).toEqual([['next-in-line']]);
    });

    it('tells a running task to stop wherever it runs, and stops its job at the provider', async () => {
      const { service, repo, lockedJobs, signals, providers } = setup();
      const providerJob = { id: 'req-1' };
      const task = repo.add({ userId: 'alice', status: TaskStatus.Processing, provider: 'openai', providerJob });
      lockedJobs.add(task.id);
      await service.cancel(alice, task.id);
      expect(signals.publishCancel).toHaveBeenCalledWith(task.id);
      expect(providers.abandon).toHaveBeenCalledWith(
        expect.objectContaining({ id: task.id, provider: 'openai', providerJob }),
      );

      // Its job may be out of the worker's hands (waiting out a poll delay) and removed: the worker still hears.
      const polling = repo.add({ userId: 'alice', status: TaskStatus.Processing });
      await service.cancel(alice, polling.id);
      expect(signals.publishCancel).toHaveBeenCalledWith(polling.id);
    });

    it('tells a queued task to stop when a worker took its job before the cancel', async () => {
      const { service, repo, lockedJobs, signals } = setup();
      const task = repo.add({ userId: 'alice', status: TaskStatus.Queued });
      lockedJobs.add(task.id);
      await service.cancel(alice, task.id);
      expect(signals.publishCancel).toHaveBeenCalledWith(task.id);
    });

    it('refuses a finished task with its status, and changes nothing', async () => {
      for (const status of [TaskStatus.Completed, TaskStatus.Failed, TaskStatus.Cancelled]) {
        const { service, repo, stateMachine, providers } = setup();
        const task = repo.add({ userId: 'alice', status });
        const err = await rejection(service.cancel(alice, task.id));
        expect(err.code).toBe(ErrorCode.InvalidTransition);
        expect(err.details).toEqual({ status });
        expect(stateMachine.cancel).not.toHaveBeenCalled();
        expect(providers.abandon).not.toHaveBeenCalled();
      }
    });

    it('answers with the status it finished with when it finished between the read and the update', async () => {
      const { service, repo, stateMachine, providers } = setup();
      const task = repo.add({ userId: 'alice', status: TaskStatus.Processing });
      stateMachine.cancel.mockImplementationOnce(() => {
        repo.rows.get(task.id)!.status = TaskStatus.Completed;
        return Promise.resolve(null);
      });
      const err = await rejection(service.cancel(alice, task.id));
      expect(err.details).toEqual({ status: TaskStatus.Completed });
      expect(providers.abandon).not.toHaveBeenCalled();
    });

    it("answers 404 for another user's task (and for an id that is not a UUID) and leaves it running", async () => {
      const { service, repo, stateMachine } = setup();
      const task = repo.add({ userId: 'bob', status: TaskStatus.Queued });
      await expect(service.cancel(alice, task.id)).rejects.toMatchObject({ code: ErrorCode.NotFound });
      await expect(service.cancel(alice, 'not-a-uuid')).rejects.toMatchObject({ code: ErrorCode.NotFound });
      expect(repo.findOwned).toHaveBeenCalledTimes(1);
      expect(stateMachine.cancel).not.toHaveBeenCalled();
      expect(repo.rows.get(task.id)!.status).toBe(TaskStatus.Queued);

      await service.cancel(admin, task.id);
      expect(repo.rows.get(task.id)!.status).toBe(TaskStatus.Cancelled);
    });

    it('cancels the unfinished parts of a split task and leaves the finished ones', async () => {
      const { service, repo, providers } = setup();
      const parent = repo.add({ userId: 'alice', status: TaskStatus.Processing, parts: 3 });
      const part = (partIndex: number, status: TaskStatus) =>
        repo.add({ userId: 'alice', parentId: parent.id, partIndex, status });
      const done = part(0, TaskStatus.Completed);
      const running = part(1, TaskStatus.Processing);
      const waiting = part(2, TaskStatus.Queued);

      await service.cancel(alice, parent.id);
      expect(repo.rows.get(done.id)!.status).toBe(TaskStatus.Completed);
      expect(repo.rows.get(running.id)!.status).toBe(TaskStatus.Cancelled);
      expect(repo.rows.get(waiting.id)!.status).toBe(TaskStatus.Cancelled);
      expect(providers.abandon.mock.calls.map(([t]: [{ id: string }]) => t.id).sort()).toEqual(
        [parent.id, running.id, waiting.id].sort(),
      );
    });
  });

  describe('get and list', () => {
    it("shows a user their own task with its queue position, and answers 404 for another user's", async () => {
      const { service, repo } = setup();
      const task = repo.add({ userId: 'alice', status: TaskStatus.Queued });
      await expect(service.get(alice, task.id)).resolves.toMatchObject({ id: task.id, queue_position: 7 });
      await expect(service.get(bob, task.id)).rejects.toMatchObject({ code: ErrorCode.NotFound });
      await expect(service.get(admin, task.id)).resolves.toMatchObject({ id: task.id });
    });

    it('hands out freshly signed links to stored files on every read', async () => {
      const { service, repo } = setup();
      const task = repo.add({
        userId: 'alice',
        status: TaskStatus.Completed,
        output: { files: [{ key: 'out/a.png', url: 'https://files.test/out/a.png?sig=expired' }, { url: 'x' }] },
      });
      const answer = await service.get(alice, task.id);
      expect(answer.output).toEqual({
        files: [{ key: 'out/a.png', url: 'https://files.test/out/a.png?sig=fresh' }, { url: 'x' }],
      });
      expect(answer.queue_position).toBeUndefined();
    });

    it("lists a user's own tasks only; all users' only for an admin", async () => {
      const { service, repo } = setup();
      repo.add({ userId: 'alice' });
      repo.add({ userId: 'bob' });
      const own = await service.list(alice, { scope: 'own' });
      expect(own.data).toHaveLength(1);
      expect(repo.list).toHaveBeenLastCalledWith(expect.objectContaining({ userId: 'alice', limit: 20 }));

      await expect(service.list(alice, { scope: 'all' })).rejects.toMatchObject({
        code: ErrorCode.Forbidden,
      });
      const all = await service.list(admin, { scope: 'all' });
      expect(all.data).toHaveLength(2);
    });

    it('pages with a cursor it made, and refuses one it did not', async () => {
      const { service, repo } = setup();
      for (let i = 0; i < 3; i++) repo.add({ userId: 'alice', createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)) });
      const page = await service.list(alice, { limit: 2 });
      expect(page.data).toHaveLength(2);
      expect(page.next_cursor).toEqual(expect.any(String));

      await service.list(alice, { limit: 2, cursor: page.next_cursor! });
      expect(repo.list).toHaveBeenLastCalledWith(
        expect.objectContaining({ after: { createdAt: new Date(page.data[1].created_at), id: page.data[1].id } }),
      );
      const problems = await problemsOf(service.list(alice, { cursor: 'garbage' }));
      expect(problems.map((p) => p.field)).toEqual(['cursor']);
    });
  });

  describe('retry and result', () => {
    it('runs a failed task again and refuses one that has not finished', async () => {
      const { service, repo, queue } = setup();
      const failed = repo.add({ userId: 'alice', status: TaskStatus.Failed });
      await expect(service.retry(alice, failed.id)).resolves.toMatchObject({ status: TaskStatus.Queued });
      expect(queue.enqueueTaskOrDefer).toHaveBeenCalledWith(expect.objectContaining({ id: failed.id }));

      const running = repo.add({ userId: 'alice', status: TaskStatus.Processing });
      const err = await rejection(service.retry(alice, running.id));
      expect(err.code).toBe(ErrorCode.InvalidTransition);
      expect(err.details).toEqual({ status: TaskStatus.Processing });
    });

    it('answers the output of a completed task, where to poll for an unfinished one, and the error of a failed one', async () => {
      const { service, repo } = setup();
      const done = repo.add({ userId: 'alice', status: TaskStatus.Completed, output: { text: 'hi' } });
      const queued = repo.add({ userId: 'alice', status: TaskStatus.Queued });
      const failed = repo.add({
        userId: 'alice',
        status: TaskStatus.Failed,
        error: { code: 'provider_error', message: 'boom', retryable: false },
      });
      await expect(service.result(alice, done.id)).resolves.toEqual({
        state: 'completed',
        body: { id: done.id, status: TaskStatus.Completed, output: { text: 'hi' } },
      });
      await expect(service.result(alice, queued.id)).resolves.toEqual({
        state: 'pending',
        body: { id: queued.id, status: TaskStatus.Queued, status_url: `/api/v1/media/tasks/${queued.id}` },
      });
      await expect(service.result(alice, failed.id)).rejects.toMatchObject({
        code: ErrorCode.TaskFailed,
        details: { id: failed.id, status: TaskStatus.Failed, error: { code: 'provider_error', message: 'boom' } },
      });
    });
  });
});
