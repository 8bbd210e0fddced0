import { Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { DependencyUnavailableException, DomainException, ErrorCode } from '../common/domain-exception';
import { CLEANABLE_STATUSES, CleanableStatus } from './dto/queue-clean.dto';
import { QueueCountsDto, QueueStatsDto, QueueStatsResponseDto } from './dto/queue-stats-response.dto';
import { ActiveJobDto, QueueSummaryDataDto, QueueSummaryTotalsDto } from './dto/queue-summary.dto';
import { QueueName } from './queue.constants';
import { QueueGateway } from './queue.gateway';
import { withTimeout } from './redis.service';

const QUEUE_TIMEOUT_MS = 5000;
/** The running jobs `summary()` lists, at most. */
const ACTIVE_JOBS_LISTED = 50;
const QUEUE_TIMED_OUT = 'queue admin: the queue backend timed out';

/** BullMQ's job states, in the order they are counted; `prioritized` is apart from `waiting` since BullMQ 4. */
const COUNTED = ['waiting', 'prioritized', 'active', 'completed', 'failed', 'delayed', 'waiting-children'] as const;

export interface QueueCleanResult {
  grace_ms: number;
  statuses: CleanableStatus[];
  removed: Record<string, Partial<Record<CleanableStatus, number>>>;
  total_removed: number;
}

/** Operator actions on the BullMQ queues; task rows in Postgres are never touched here. */
@Injectable()
export class QueueAdminService {
  constructor(private readonly gateway: QueueGateway) {}

  async stats(): Promise<QueueStatsResponseDto> {
    const queues = this.gateway.allQueues();
    const perQueue = await this.onQueues(() => Promise.all(queues.map(async (q) => this.statsOf(q))));
    const totals = { ...emptyCounts(), paused: 0 };
    for (const stats of perQueue) {
      for (const key of Object.keys(emptyCounts()) as (keyof QueueCountsDto)[]) totals[key] += stats[key];
      if (stats.paused) totals.paused += 1;
    }
    return { queues: Object.fromEntries(queues.map((q, i) => [q.name, perQueue[i]])), totals };
  }

  /** The chatbot system's view of the queues: five counts each, the running jobs, and the totals. */
  async summary(): Promise<QueueSummaryDataDto> {
    const stats = await this.stats();
    const queues: QueueSummaryDataDto['queues'] = {};
    const summary: QueueSummaryTotalsDto = { waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0, total: 0 };
    for (const [name, s] of Object.entries(stats.queues)) {
      const counts = {
        waiting: s.waiting + s.prioritized,
        active: s.active,
        completed: s.completed,
        failed: s.failed,
        delayed: s.delayed,
      };
      queues[name] = counts;
      for (const key of Object.keys(counts) as (keyof typeof counts)[]) {
        summary[key] += counts[key];
        summary.total += counts[key];
      }
    }
    const active = await this.onQueues(() =>
      Promise.all(this.gateway.allQueues().map((q) => q.getActive(0, ACTIVE_JOBS_LISTED - 1))),
    );
    const activeJobs: ActiveJobDto[] = active
      .flat()
      .map((job) => ({
        queue: job.queueName,
        id: String(job.id),
        name: job.name,
        attempts_made: job.attemptsMade,
        started_at: job.processedOn ? new Date(job.processedOn).toISOString() : null,
      }))
      .sort((a, b) => (a.started_at ?? '').localeCompare(b.started_at ?? ''))
      .slice(0, ACTIVE_JOBS_LISTED);
    return { queues, activeJobs, summary };
  }

  /** Removes finished jobs older than `graceMs` from every queue (BullMQ `clean`); answers the ids counted. */
  async clean(opts: {
    graceMs: number;
    status?: CleanableStatus;
    statuses?: CleanableStatus[];
    limit?: number;
  }): Promise<QueueCleanResult> {
    const statuses = opts.statuses?.length ? opts.statuses : opts.status ? [opts.status] : [...CLEANABLE_STATUSES];
    const removed: QueueCleanResult['removed'] = {};
    let total = 0;
    for (const queue of this.gateway.allQueues()) {
      removed[queue.name] = {};
      for (const status of statuses) {
        // limit 0 means no limit to BullMQ.
        const ids = await this.onQueues(() => queue.clean(opts.graceMs, opts.limit ?? 0, status));
        removed[queue.name][status] = ids.length;
        total += ids.length;
      }
    }
    return { grace_ms: opts.graceMs, statuses, removed, total_removed: total };
  }

  async pause(name: string): Promise<QueueStatsDto & { name: string }> {
    const queue = this.byName(name);
    await this.onQueues(() => queue.pause());
    return { name: queue.name, ...(await this.onQueues(() => this.statsOf(queue))) };
  }

  async resume(name: string): Promise<QueueStatsDto & { name: string }> {
    const queue = this.byName(name);
    await this.onQueues(() => queue.resume());
    return { name: queue.name, ...(await this.onQueues(() => this.statsOf(queue))) };
  }

  /** 503 (not a 500, not a hang) when the queues' datastore is away: BullMQ's commands wait for a reconnect otherwise. */
  private async onQueues<T>(work: () => Promise<T>): Promise<T> {
    this.gateway.assertAvailable();
    try {
      return await withTimeout(work(), QUEUE_TIMEOUT_MS, QUEUE_TIMED_OUT);
    } catch (err) {
      if ((err as Error).message === QUEUE_TIMED_OUT) throw new DependencyUnavailableException(this.gateway.dependency);
      throw err;
    }
  }

  private byName(name: string): Queue {
    const known = Object.values(QueueName) as string[];
    if (!known.includes(name)) {
      throw new DomainException(ErrorCode.NotFound, `queue ${name} not found; known queues: ${known.join(', ')}`, {
        known_queues: known,
      });
    }
    return this.gateway.queue(name as QueueName);
  }

  private async statsOf(queue: Queue): Promise<QueueStatsDto> {
    const [counts, paused] = await Promise.all([queue.getJobCounts(...COUNTED), queue.isPaused()]);
    return {
      waiting: counts.waiting ?? 0,
      prioritized: counts.prioritized ?? 0,
      active: counts.active ?? 0,
      completed: counts.completed ?? 0,
      failed: counts.failed ?? 0,
      delayed: counts.delayed ?? 0,
      waiting_children: counts['waiting-children'] ?? 0,
      paused,
    };
  }
}

function emptyCounts(): QueueCountsDto {
  return { waiting: 0, prioritized: 0, active: 0, completed: 0, failed: 0, delayed: 0, waiting_children: 0 };
}
