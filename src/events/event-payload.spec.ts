import { toJobView } from '../sources/video-jobs.mapper';
import { TaskEntity } from '../tasks/entities/task.entity';
import { toTaskResponse } from '../tasks/task.mapper';
import { TaskEventType, TaskStatus, TaskType } from '../tasks/task.enums';
import { payloadOf, webhookBody } from './event-payload';

function completedClip(options: TaskEntity['options']): TaskEntity {
  const at = new Date('2026-01-01T00:00:05.123Z');
  return TaskEntity.create({
    id: '6f1c0000-0000-4000-8000-000000000002',
    userId: 'alice',
    type: TaskType.Img2Vid,
    input: { images: [{ id: 'w1', image_url: 'https://example.com/a.png', duracao: 1 }] },
    status: TaskStatus.Completed,
    progress: 1,
    output: {
      files: [
        { filename: 'w1.mp4', url: '/files/a/w1.mp4' },
        { filename: 'w2.mp4', url: '/files/a/w2.mp4' },
      ],
      clips: [{ id: 'w1' }],
    },
    options,
    metadata: { id_roteiro: 7 },
    eventSeq: 4,
    createdAt: new Date('2026-01-01T00:00:00.000Z'),
    updatedAt: at,
    startedAt: new Date('2026-01-01T00:00:01.000Z'),
    completedAt: at,
  });
}

describe('webhookBody', () => {
  it('is the contract’s event payload of the row for tasks of the API', () => {
    const task = completedClip({});
    expect(JSON.parse(webhookBody(TaskEventType.Completed, task))).toEqual(
      JSON.parse(JSON.stringify(payloadOf(TaskEventType.Completed, task, 4, task.updatedAt))),
    );
    expect(JSON.parse(webhookBody(TaskEventType.Completed, task))).toMatchObject({
      event_type: 'task.completed',
      sequence: 4,
      timestamp: '2026-01-01T00:00:05.123Z',
    });
  });

  it('says for a task of the sources’ video routes what GET /video/job/{id} says of it, timings aside', () => {
    const task = completedClip({ webhook_format: 'sources' });
    const view = toJobView(toTaskResponse(task));
    expect(JSON.parse(webhookBody(TaskEventType.Completed, task))).toEqual({
      jobId: view.id,
      status: view.status,
      result: view.output,
      error: view.error,
      id_roteiro: view.id_roteiro,
    });
    expect(view.output).toEqual({
      videos: [
        { id: 'w1', video_url: '/files/a/w1.mp4', filename: 'w1.mp4' },
        { id: 'w2', video_url: '/files/a/w2.mp4', filename: 'w2.mp4' },
      ],
      message: '2 videos ready',
    });
  });

  it('gives a failed sources’ job its error message and no result', () => {
    const task = completedClip({ webhook_format: 'sources' });
    Object.assign(task, { status: TaskStatus.Failed, output: null, error: { code: 'timeout', message: 'too slow' } });
    expect(JSON.parse(webhookBody(TaskEventType.Failed, task))).toEqual({
      jobId: task.id,
      status: 'FAILED',
      result: null,
      error: 'too slow',
      id_roteiro: 7,
    });
  });
});
