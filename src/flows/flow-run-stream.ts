import { Injectable } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { setTimeout as pause } from 'node:timers/promises';
import { AuthUser } from '../auth/auth.types';
import { SSE_HEADERS, sseRetry } from '../events/sse';
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
export class FlowRunStream {
  constructor(
    private readonly runs: FlowRunsService,
    private readonly repo: FlowsRepository,
  ) {}

  async stream(user: AuthUser, id: string, reply: FastifyReply): Promise<void> {
    let run: FlowRunEntity | null = await this.runs.findOwned(user, id);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...SSE_HEADERS, 'x-request-id': String(reply.request.id) });
    res.write(sseRetry());
    let closed = false;
    res.on('close', () => (closed = true));
    let sequence = 0;
    let started = false;
    const completed = new Set<string>();
    const send = (type: string, data: Record<string, unknown>) => {
      sequence++;
      res.write(
        `id: ${sequence}\nevent: ${type}\ndata: ${JSON.stringify({ event_type: type, sequence, ...data })}\n\n`,
      );
    };
    while (!closed && run) {
      const steps = await this.repo.stepsOf(run.id);
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
      run = await this.repo.findRun(run.id);
    }
    res.end();
  }
}
