import { ConditionExecutor } from './executors/condition.executor';
import { DelayExecutor } from './executors/delay.executor';
import { stepTaskId } from './executors/task.executor';
import { findLoop, nextOf, publicSteps, publicTrigger, stepsProblems, triggerProblems } from './flow-definition';
import { FlowStep } from './flow-step.types';

const executors = [new ConditionExecutor(), new DelayExecutor()];
const delay = (id: string, extra: Record<string, unknown> = {}) => ({ id, kind: 'delay', seconds: 1, ...extra });

describe('flow definitions', () => {
  it('go to the following step by default, and "end" after the last', () => {
    const steps = [delay('a'), delay('b', { next: 'end' }), delay('c')] as FlowStep[];
    expect(nextOf(steps, 0)).toBe('b');
    expect(nextOf(steps, 1)).toBe('end');
    expect(nextOf(steps, 2)).toBe('end');
  });

  it('find loops through next, fall-through, switch cases, default and on_error', () => {
    expect(findLoop([delay('a'), delay('b')] as FlowStep[])).toBeNull();
    expect(findLoop([delay('a', { next: 'a' })] as FlowStep[])).toEqual(['a', 'a']);
    expect(
      findLoop([
        delay('a'),
        { id: 'b', kind: 'condition', switch: 'x', cases: { one: 'end', two: 'a' } },
      ] as FlowStep[]),
    ).toEqual(['a', 'b', 'a']);
    expect(
      findLoop([delay('a'), { id: 'b', kind: 'condition', switch: 'x', cases: {}, default: 'a' }] as FlowStep[]),
    ).toEqual(['a', 'b', 'a']);
    expect(findLoop([delay('a'), delay('b', { on_error: 'a', next: 'end' })] as FlowStep[])).toEqual(['a', 'b', 'a']);
    // Going forward to a later step, even from several places, is no loop.
    expect(
      findLoop([
        { id: 'a', kind: 'condition', if: 'x', then: 'c', else: 'b' },
        delay('b', { on_error: 'c' }),
        delay('c'),
      ] as FlowStep[]),
    ).toBeNull();
  });

  it('list every problem, each naming its step and field', () => {
    expect(stepsProblems('nope', executors)).toEqual(['steps: must be an array of steps']);
    expect(
      stepsProblems(
        [
          null,
          { id: 'bad id!', kind: 'delay', seconds: 1 },
          { id: 'x', kind: 'delay' },
          { id: 'y', kind: 'condition', switch: '$.', cases: { a: 'zzz' } },
          { id: 'z', kind: 'delay', until: 'not a time', backoff_ms: -1 },
        ],
        executors,
      ),
    ).toEqual([
      'steps[0]: must be an object',
      "steps[1].id: must be 1-64 letters, digits, '_' or '-'",
      'steps[2].seconds: a delay needs either seconds or until',
      'steps[3].cases.a: must be a step id of this flow or "end", not "zzz"',
      expect.stringMatching(/^steps\[3\]\.switch: invalid expression/),
      'steps[4].backoff_ms: must be a whole number from 0 to 3600000',
      'steps[4].until: must be an ISO time',
    ]);
    expect(stepsProblems([delay('a', { kind: 'task' })], executors)).toEqual(['steps[0].kind: unknown kind "task"']);
  });

  it('check triggers and never show their secret', () => {
    expect(triggerProblems({ type: 'schedule' })).toEqual(['trigger.cron: a schedule needs cron or every']);
    expect(triggerProblems({ type: 'webhook', secret: 'short', require_api_key: 'yes' })).toEqual([
      'trigger.secret: must be a string of at least 8 characters',
      'trigger.require_api_key: must be a boolean',
    ]);
    expect(publicTrigger({ type: 'webhook', secret: 's3cret-value' })).toEqual({ type: 'webhook', has_secret: true });
  });

  it('name the task of a step by run, step and round: the same on every try, another in the next round', () => {
    const run = '6f1c2b7e-1d8a-4c3e-9b1a-0f5e2d4c6a8b';
    expect(stepTaskId(run, 'subs', 1)).toBe(stepTaskId(run, 'subs', 1));
    expect(stepTaskId(run, 'subs', 1)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(stepTaskId(run, 'subs', 2)).not.toBe(stepTaskId(run, 'subs', 1));
    expect(stepTaskId(run, 'other', 1)).not.toBe(stepTaskId(run, 'subs', 1));
  });
});

describe('steps as the API shows them', () => {
  it("never shows a notify step's secret nor the credential headers of an http step", () => {
    const shown = publicSteps([
      { id: 'tell', kind: 'notify', url: 'https://example.com/hook', secret: 'whsec_abcdefabcdefabcdef' },
      {
        id: 'call',
        kind: 'http',
        url: 'https://api.example.com',
        headers: { Authorization: 'Bearer live-key', 'X-Api-Key': 'k-123', Accept: 'application/json' },
      },
      { id: 'plain', kind: 'notify', url: 'https://example.com/other' },
    ]);
    expect(shown).toEqual([
      { id: 'tell', kind: 'notify', url: 'https://example.com/hook', has_secret: true },
      {
        id: 'call',
        kind: 'http',
        url: 'https://api.example.com',
        headers: { Authorization: '***', 'X-Api-Key': '***', Accept: 'application/json' },
      },
      { id: 'plain', kind: 'notify', url: 'https://example.com/other', has_secret: false },
    ]);
    expect(JSON.stringify(shown)).not.toMatch(/live-key|k-123|whsec_/);
  });
});
