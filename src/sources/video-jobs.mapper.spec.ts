import { TaskResponseDto } from '../tasks/dto/task-response.dto';
import { TaskPriority, TaskStatus, TaskType } from '../tasks/task.enums';
import { orchestratorStatus, toJobView, toOrchestratorView, videosReadyMessage } from './video-jobs.mapper';

function task(status: TaskStatus, extra: Partial<TaskResponseDto> = {}): TaskResponseDto {
  return {
    id: '6f1c0000-0000-4000-8000-000000000001',
    type: TaskType.Img2Vid,
    status,
    priority: TaskPriority.Medium,
    progress: 0,
    input: { images: [] },
    output: null,
    error: null,
    provider: null,
    attempts: 0,
    cost: null,
    cached: false,
    webhook_url: null,
    webhook_events: null,
    metadata: { id_roteiro: 'r-1' },
    created_at: '2026-01-01T00:00:00.000Z',
    started_at: status === TaskStatus.Queued ? null : '2026-01-01T00:00:01.000Z',
    completed_at: null,
    run_at: null,
    delay_time_ms: null,
    execution_time_ms: null,
    status_url: '',
    result_url: '',
    ...extra,
  };
}

describe('the orchestrator’s view of a job', () => {
  it('is QUEUED in the queue, SUBMITTED once taken with no work seen running, PROCESSING once there is', () => {
    expect(orchestratorStatus(task(TaskStatus.Pending))).toBe('QUEUED');
    expect(orchestratorStatus(task(TaskStatus.Queued))).toBe('QUEUED');
    expect(orchestratorStatus(task(TaskStatus.Processing))).toBe('SUBMITTED');
    expect(orchestratorStatus(task(TaskStatus.Processing, { progress: 0.01 }))).toBe('PROCESSING');
    expect(orchestratorStatus(task(TaskStatus.Completed, { progress: 1 }))).toBe('COMPLETED');
    expect(orchestratorStatus(task(TaskStatus.Failed))).toBe('FAILED');
    expect(orchestratorStatus(task(TaskStatus.Cancelled))).toBe('CANCELLED');
  });

  it('reads a split job from its parts: SUBMITTED until one runs or has completed', () => {
    const parent = task(TaskStatus.Processing, { parts: 3 });
    const queued = task(TaskStatus.Queued);
    const atProvider = task(TaskStatus.Processing);
    expect(orchestratorStatus(parent, [queued, queued, queued])).toBe('SUBMITTED');
    expect(orchestratorStatus(parent, [atProvider, atProvider, queued])).toBe('SUBMITTED');
    expect(orchestratorStatus(parent, [task(TaskStatus.Processing, { progress: 0.02 }), queued, queued])).toBe(
      'PROCESSING',
    );
    expect(orchestratorStatus(parent, [task(TaskStatus.Completed), queued, queued])).toBe('PROCESSING');
  });

  it('shows progress 0–100: the parts’ shares for a split job, never 100 before it completes', () => {
    const parent = task(TaskStatus.Processing, { parts: 3, progress: 1 / 3 });
    const parts = [
      task(TaskStatus.Completed, { progress: 1 }),
      task(TaskStatus.Processing, { progress: 0.5 }),
      task(TaskStatus.Queued),
    ];
    expect(toOrchestratorView(parent, parts).progress).toBe(50);
    // The task's own count of completed parts wins when the parts' shares say less.
    expect(toOrchestratorView(task(TaskStatus.Processing, { progress: 2 / 3 }), parts).progress).toBe(66);
    expect(toOrchestratorView(task(TaskStatus.Processing, { progress: 0.999 })).progress).toBe(99);
    expect(toOrchestratorView(task(TaskStatus.Completed, { progress: 1 })).progress).toBe(100);
    expect(toOrchestratorView(task(TaskStatus.Queued)).progress).toBe(0);
  });

  it('carries the job’s times, result, error and id_roteiro', () => {
    const done = task(TaskStatus.Completed, {
      progress: 1,
      completed_at: '2026-01-01T00:00:04.000Z',
      output: {
        files: [
          { filename: 'a.mp4', url: '/files/a' },
          { filename: 'b.mp4', url: '/files/b' },
        ],
        clips: [{ id: 'a' }, { id: 'b' }],
      },
    });
    expect(toOrchestratorView(done)).toEqual({
      jobId: done.id,
      id: done.id,
      status: 'COMPLETED',
      progress: 100,
      createdAt: '2026-01-01T00:00:00.000Z',
      startedAt: '2026-01-01T00:00:01.000Z',
      completedAt: '2026-01-01T00:00:04.000Z',
      delayTime: 1000,
      executionTime: 3000,
      result: {
        videos: [
          { id: 'a', video_url: '/files/a', filename: 'a.mp4' },
          { id: 'b', video_url: '/files/b', filename: 'b.mp4' },
        ],
        message: '2 videos ready',
      },
      error: null,
      id_roteiro: 'r-1',
    });
    const failed = task(TaskStatus.Failed, { error: { code: 'timeout', message: 'too long' } });
    expect(toOrchestratorView(failed)).toMatchObject({ status: 'FAILED', result: null, error: 'too long' });
    // The async video API keeps RunPod's words for the same jobs.
    expect(toJobView(task(TaskStatus.Processing, { progress: 0.5 })).status).toBe('IN_PROGRESS');
    expect(toJobView(task(TaskStatus.Queued)).status).toBe('IN_QUEUE');
  });

  it('says how many videos are ready', () => {
    expect(videosReadyMessage(1)).toBe('1 video ready');
    expect(videosReadyMessage(100)).toBe('100 videos ready');
  });
});
