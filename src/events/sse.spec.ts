import { TaskEventType } from '../tasks/task.enums';
import type { TaskEventPayload } from './event-payload';
import { parseLastEventId, sseEvent } from './sse';

describe('SSE framing', () => {
  const payload: TaskEventPayload = {
    event_type: TaskEventType.Completed,
    task_id: 'a1',
    timestamp: '2025-01-01T00:00:00.000Z',
    sequence: 4,
    data: {
      status: 'completed',
      type: 'subtitle_generation',
      progress: 1,
      output_data: { content: 'line one\nline two' },
      error: null,
    },
    user_id: 'alice',
    metadata: null,
  };

  it('frames an event as id, event and one data line holding the webhook body', () => {
    const frame = sseEvent(payload);
    expect(frame.endsWith('\n\n')).toBe(true);
    const lines = frame.slice(0, -2).split('\n');
    expect(lines).toEqual(['id: 4', 'event: task.completed', `data: ${JSON.stringify(payload)}`]);
    expect(JSON.parse(lines[2].slice('data: '.length))).toEqual(payload);
  });

  it('leaves the id line out of a frame of a feed of many tasks', () => {
    expect(sseEvent(payload, { id: false })).toBe(`event: task.completed\ndata: ${JSON.stringify(payload)}\n\n`);
  });

  it('reads Last-Event-ID as a sequence, anything else as none', () => {
    expect(parseLastEventId('3')).toBe(3);
    expect(parseLastEventId(' 12 ')).toBe(12);
    expect(parseLastEventId(undefined)).toBe(0);
    expect(parseLastEventId('')).toBe(0);
    expect(parseLastEventId('-1')).toBe(0);
    expect(parseLastEventId('abc')).toBe(0);
    expect(parseLastEventId('1e9')).toBe(0);
  });
});
