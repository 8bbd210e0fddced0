import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { ConnectionOptions, Queue, Worker } from 'bullmq';
import type { Cluster } from 'ioredis';
import { AppConfig } from '../config/app-config';
import { queueTelemetry } from '../telemetry/telemetry';
import { bullPrefix, QueueName } from './queue.constants';
import { JobHandler, PromoteOutcome, QueueBackend, WorkerSettings } from './queue-backend';
import { connectRedis, redisOptionsFromUrl } from './redis-options';
import { RedisService } from './redis.service';

/** BullMQ on Redis (QUEUE_BACKEND=redis): REDIS_URL, every key under the deployment's prefix. */
@Injectable()
export class RedisQueueBackend extends QueueBackend implements OnApplicationShutdown {
  readonly kind = 'redis';
  readonly dependency = 'redis';
  private readonly connection: ConnectionOptions;
  private readonly prefix: string;
  private readonly queues: Queue[] = [];
  private readonly clusterClients: Cluster[] = [];

  constructor(
    private readonly config: AppConfig,
    private readonly redis: RedisService,
  ) {
    super();
    this.connection = {
      ...redisOptionsFromUrl(config.redisUrl),
      connectionName: `${config.redisPrefix}:bullmq`,
    } as ConnectionOptions;
    this.prefix = bullPrefix(config.redisPrefix);
  }

  createQueue(name: QueueName): Queue {
    const connection = this.clusterConnection();
    const queue = new Queue(name, {
      connection: connection ?? this.connection,
      prefix: this.prefix,
      telemetry: queueTelemetry(),
    });
    // BullMQ leaves a connection it was handed open: it goes once the queue has closed.
    if (connection) this.clusterClients.push(connection);
    this.queues.push(queue);
    return queue;
  }

  createWorker(name: QueueName, handler: JobHandler, settings: WorkerSettings): Worker {
    const connection = this.clusterConnection();
    const worker = new Worker(name, handler, {
      ...settings,
      connection: connection ?? this.connection,
      prefix: this.prefix,
      telemetry: queueTelemetry(),
    });
    if (connection) worker.once('closed', () => connection.disconnect());
    return worker;
  }

  /**
   * On a Redis Cluster BullMQ is handed a cluster client (it cannot make one from options); each queue and worker
   * gets its own, as it does its own connection otherwise. Every key of a queue carries the `{prefix}` hash tag, so
   * each of BullMQ's scripts touches one slot.
   */
  private clusterConnection(): Cluster | undefined {
    if (!this.config.redisCluster) return undefined;
    return connectRedis(this.config.redisUrl, true, {
      connectionName: `${this.config.redisPrefix}:bullmq`,
      maxRetriesPerRequest: null,
    }) as Cluster;
  }

  get isAvailable(): boolean {
    return this.redis.isReady;
  }

  async lockHolder(worker: Worker, jobId: string): Promise<string | null> {
    const client = await worker.getBackend().client;
    return client.get(`${worker.toKey(jobId)}:lock`);
  }

  /** BullMQ's promote is one Lua script: it checks the state and moves the job at once. */
  async promoteDelayed(queue: Queue, jobId: string): Promise<PromoteOutcome> {
    const job = await queue.getJob(jobId);
    if (!job) return 'other';
    try {
      await job.promote();
      return 'promoted';
    } catch (err) {
      if (!/not in the delayed state/.test((err as Error).message)) throw err;
      return (await job.getState()) === 'active' ? 'active' : 'other';
    }
  }

  /** BullMQ's remove is one Lua script too; it refuses a job whose lock is held. */
  async removeJob(queue: Queue, jobId: string): Promise<boolean> {
    const job = await queue.getJob(jobId);
    if (!job) return true;
    try {
      await job.remove();
      return true;
    } catch (err) {
      if (/locked by another worker/.test((err as Error).message)) return false;
      throw err;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.queues.map((queue) => queue.close()));
    for (const client of this.clusterClients) client.disconnect();
  }
}
