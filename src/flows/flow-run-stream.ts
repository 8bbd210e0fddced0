import { BeforeApplicationShutdown, Injectable } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { setTimeout as pause } from 'node:timers/promises';
import { AuthUser } from '../auth/auth.types';
import { SSE_HEADERS, SSE_HEARTBEAT, sseRetry } from '../events/sse';
import { HeldConnections } from '../rate-limit/held-connections.service';
import { AppConfig } from '../config/app-config';
import { FINISHED_RUN_STATUSES, FlowRunEntity } from './entities/flow.entities';
import { FlowRunsService, toRunResponse } from './flow-runs.service';
import { FlowsRepository } from './flows.repository';

/** How often a run's stream reads the run. */
export const RUN_STREAM_POLL_MS = 500;

const FINAL_EVENT: Record<string, string> = {
  completed: 'flow.completed',
  failed: 'flow.failed',
  cancelled: 'flow.cancelled',
};

/**
 * A run's events as Server-Sent Events, read from its rows every RUN_STREAM_POLL_MS (whatever process runs the
 * steps): flow.started, flow.step.completed per step, then the final event, after which the stream closes.
 */
@Injectable()
export class FlowRunStream implements BeforeApplicationShutdown {
  /** Set at shutdown: open streams end (clients reconnect elsewhere), as task streams do. */
  private stopping = false;

  constructor(
    private readonly runs: FlowRunsService,
    private readonly repo: FlowsRepository,
    private readonly held: HeldConnections,
    private readonly config: AppConfig,
  ) {}

  beforeApplicationShutdown(): void {
    this.stopping = true;
  }

  async stream(user: AuthUser, id: string, reply: FastifyReply): Promise<void> {
    const run = await this.runs.findOwned(user, id);
    // A stream holds one of the user's places (429 past HELD_CONNECTIONS_PER_USER), as task streams do.
    const place = await this.held.acquireOrRefuse(user.id, reply);
    try {
      reply.hijack();
      // Past the hijack no error answer can be sent: a failure (the database away) ends the stream.
      await this.write(run, reply).catch(() => undefined);
      if (!reply.raw.writableEnded) reply.raw.end();
    } finally {
      place.release();
    }
  }

  private async write(first: FlowRunEntity, reply: FastifyReply): Promise<void> {
    let run: FlowRunEntity | null = first;
    const res = reply.raw;
    res.writeHead(200, { ...SSE_HEADERS, 'x-request-id': String(reply.request.id) });
    res.write(sseRetry());
    let closed = false;
    res.on('close', () => (closed = true));
    let sequence = 0;
    let started = false;
    const completed = new Set<string>();
    let lastWrite = Date.now();
    let readAgain = false;
    const send = (type: string, data: Record<string, unknown>) => {
      sequence++;
      lastWrite = Date.now();
      res.write(
        `id: ${sequence}\nevent: ${type}\ndata: ${JSON.stringify({ event_type: type, sequence, ...data })}\n\n`,
      );
    };
    while (!closed && !this.stopping && run) {
      const steps = await this.repo.stepsOf(run.id);
      if (!started && !run.startedAt && !readAgain && steps.some((step) => step.status === 'completed')) {
        // The run was read before it began, its steps after some ended: read it again (then its steps), so that
        // flow.started comes first.
        readAgain = true;
        run = await this.repo.findRun(run.id);
        continue;
      }
      if (!started && run.startedAt) {
        started = true;
        send('flow.started', { run_id: run.id, flow_id: run.flowId, status: run.status });
      }
      for (const step of steps) {
        if (step.status !== 'completed' || completed.has(`${step.stepId}`)) continue;
        completed.add(step.stepId);
        send('flow.step.completed', {
          run_id: run.id,
          step: { id: step.stepId, kind: step.kind, status: step.status, output: step.output },
        });
      }
      if (FINISHED_RUN_STATUSES.includes(run.status)) {
        send(FINAL_EVENT[run.status], { run_id: run.id, run: toRunResponse(run, steps) });
        break;
      }
      await pause(RUN_STREAM_POLL_MS);
      if (Date.now() - lastWrite >= this.config.sseHeartbeatMs) {
        res.write(SSE_HEARTBEAT);
        lastWrite = Date.now();
      }
      run = await this.repo.findRun(run.id);
    }
  }
}
