import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { AuthUser } from '../auth/auth.types';
import type { AppConfig } from '../config/app-config';
import type { HeldConnections } from '../rate-limit/held-connections.service';
import type { FlowRunEntity, FlowStepEntity } from './entities/flow.entities';
import { FlowRunStream } from './flow-run-stream';
import type { FlowRunsService } from './flow-runs.service';
import type { FlowsRepository } from './flows.repository';

function run(status: string, startedAt: Date | null): FlowRunEntity {
  return {
    id: 'run-1',
    flowId: 'flow-1',
    version: 1,
    status,
    source: 'api',
    currentStep: null,
    round: 1,
    error: null,
    trigger: null,
    createdAt: new Date(0),
    startedAt,
    finishedAt: status === 'completed' ? new Date(2) : null,
  } as unknown as FlowRunEntity;
}

function step(stepId: string): FlowStepEntity {
  return { stepId, kind: 'delay', status: 'completed', attempts: 1, output: null, error: null } as FlowStepEntity;
}

/** The event types a stream wrote, in order. */
async function streamed(first: FlowRunEntity, later: FlowRunEntity, steps: FlowStepEntity[]): Promise<string[]> {
  const raw = Object.assign(new PassThrough(), { writeHead: () => undefined });
  let text = '';
  raw.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const reply = { raw, hijack: () => undefined, request: { id: 'req-1' } } as unknown as FastifyReply;
  const stream = new FlowRunStream(
    { findOwned: () => Promise.resolve(first) } as unknown as FlowRunsService,
    { stepsOf: () => Promise.resolve(steps), findRun: () => Promise.resolve(later) } as unknown as FlowsRepository,
    { acquireOrRefuse: () => Promise.resolve({ release: () => undefined }) } as unknown as HeldConnections,
    { sseHeartbeatMs: 15_000 } as AppConfig,
  );
  await stream.stream({ id: 'alice' } as AuthUser, 'run-1', reply);
  return [...text.matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
}

describe('FlowRunStream', () => {
  it('sends flow.started first when the run was read before it began and its steps after they ended', async () => {
    const types = await streamed(run('queued', null), run('completed', new Date(1)), [step('a'), step('b')]);
    expect(types).toEqual(['flow.started', 'flow.step.completed', 'flow.step.completed', 'flow.completed']);
  });

  it('streams a run read as it is', async () => {
    const done = run('completed', new Date(1));
    expect(await streamed(done, done, [step('a')])).toEqual(['flow.started', 'flow.step.completed', 'flow.completed']);
  });
});
