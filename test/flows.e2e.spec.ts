import { Queue } from 'bullmq';
import { SubtitleEngineProvider } from '../src/providers/adapters/subtitles/subtitle-engine.provider';
import { FlowEvent, FlowEvents } from '../src/flows/flow-events';
import { QueueGateway } from '../src/queue/queue.gateway';
import { QueueName } from '../src/queue/queue.constants';
import { TaskType } from '../src/tasks/task.enums';
import { ScriptedProvider } from './support/scripted-provider';
import { TestApp } from './support/test-app';
import { waitUntil } from './support/wait';

const subtitles = (text: string) => ({
  id: 'subs',
  kind: 'task',
  task_type: 'subtitle_generation',
  input: { text, format: 'srt' },
});

describe('flows', () => {
  let t: TestApp;
  const images = new ScriptedProvider('painter', [TaskType.ImageGeneration], ['permanent']);
  const events: FlowEvent[] = [];

  beforeAll(async () => {
    t = await TestApp.start({ providers: [images, new SubtitleEngineProvider()] });
    t.app.get(FlowEvents).events$.subscribe((e) => events.push(e));
  });
  afterAll(async () => {
    await t.close();
  });

  const createFlow = async (body: Record<string, unknown>, as = 'alice') => {
    const res = await t.request('POST', '/api/v1/flows', {
      body: { name: 'f', trigger: { type: 'api' }, ...body },
      as,
    });
    expect(res.status).toBe(201);
    return res.body;
  };
  const startRun = async (flowId: string, input: unknown = {}, as = 'alice') => {
    const res = await t.request('POST', `/api/v1/flows/${flowId}/runs`, { body: { input }, as });
    expect(res.status).toBe(202);
    return res.body.run_id as string;
  };
  const waitForRun = async (runId: string, statuses: string[], timeoutMs = 10_000) => {
    const read = async () => (await t.request('GET', `/api/v1/flows/runs/${runId}`)).body;
    return waitUntil(`run ${runId} to be ${statuses.join('/')}`, read, {
      timeoutMs,
      intervalMs: 50,
      until: (run) => statuses.includes(run?.status),
    });
  };
  const stepOf = (run: any, id: string) => run.steps.find((s: any) => s.id === id);
  const flowsQueue = (): Queue => t.app.get(QueueGateway).queue(QueueName.Flows);

  describe('definitions', () => {
    it('creates a flow: 201 with its version, its hook URL, and its trigger without the secret', async () => {
      const res = await t.request('POST', '/api/v1/flows', {
        body: {
          name: 'caption chain',
          description: 'subtitles, then a check',
          trigger: { type: 'webhook', secret: 'a-very-secret-value' },
          steps: [
            subtitles('{{ trigger.text }}'),
            { id: 'check', kind: 'condition', if: "steps.subs.status = 'completed'", then: 'end' },
          ],
          priority: 'high',
        },
      });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        version: 1,
        name: 'caption chain',
        description: 'subtitles, then a check',
        trigger: { type: 'webhook', has_secret: true },
        priority: 'high',
        webhook_url: null,
      });
      expect(res.body.trigger.secret).toBeUndefined();
      expect(JSON.stringify(res.body)).not.toContain('a-very-secret-value');
      expect(res.body.hook_url).toMatch(/^\/hooks\/[A-Za-z0-9_-]{32}$/);
      expect(res.body.steps).toHaveLength(2);

      const got = await t.request('GET', `/api/v1/flows/${res.body.id}`);
      expect(got.status).toBe(200);
      expect(got.body).toEqual(res.body);
      expect(JSON.stringify(got.body)).not.toContain('a-very-secret-value');

      const docs = await t.request('GET', '/docs-json', { token: null });
      expect(Object.keys(docs.body.paths)).toEqual(
        expect.arrayContaining(['/api/v1/flows', '/api/v1/flows/{id}/runs', '/api/v1/flows/runs/{id}/events']),
      );
    });

    it('PUT makes a new version; a run keeps the version it started with', async () => {
      const flow = await createFlow({ steps: [{ id: 'only', kind: 'condition', if: 'true', then: 'end' }] });
      const first = await startRun(flow.id);
      const put = await t.request('PUT', `/api/v1/flows/${flow.id}`, {
        body: { name: 'g', trigger: { type: 'api' }, steps: [{ id: 'other', kind: 'delay', seconds: 0 }] },
      });
      expect(put.status).toBe(200);
      expect(put.body).toMatchObject({ id: flow.id, version: 2, name: 'g' });
      expect(put.body.hook_url).toBeUndefined();
      const second = await startRun(flow.id);
      const [r1, r2] = [await waitForRun(first, ['completed']), await waitForRun(second, ['completed'])];
      expect(r1.version).toBe(1);
      expect(r1.steps.map((s: any) => s.id)).toEqual(['only']);
      expect(r2.version).toBe(2);
      expect(r2.steps.map((s: any) => s.id)).toEqual(['other']);
    });

    it('lists flows newest first with a cursor, and DELETE takes one away (204, then 404)', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++)
        ids.push((await createFlow({ steps: [{ id: 'a', kind: 'delay', seconds: 0 }] }, 'lister')).id);
      const page1 = await t.request('GET', '/api/v1/flows?limit=2', { as: 'lister' });
      expect(page1.status).toBe(200);
      expect(page1.body.data.map((f: any) => f.id)).toEqual([ids[2], ids[1]]);
      const page2 = await t.request('GET', `/api/v1/flows?limit=2&cursor=${page1.body.next_cursor}`, { as: 'lister' });
      expect(page2.body.data.map((f: any) => f.id)).toEqual([ids[0]]);
      expect(page2.body.next_cursor).toBeNull();

      expect((await t.request('DELETE', `/api/v1/flows/${ids[1]}`, { as: 'lister' })).status).toBe(204);
      expect((await t.request('GET', `/api/v1/flows/${ids[1]}`, { as: 'lister' })).status).toBe(404);
      expect((await t.request('DELETE', `/api/v1/flows/${ids[1]}`, { as: 'lister' })).status).toBe(404);
      expect((await t.request('POST', `/api/v1/flows/${ids[1]}/runs`, { as: 'lister', body: {} })).status).toBe(404);
      const after = await t.request('GET', '/api/v1/flows', { as: 'lister' });
      expect(after.body.data.map((f: any) => f.id)).toEqual([ids[2], ids[0]]);
    });

    it("answers 404 for another user's flow and run", async () => {
      const flow = await createFlow({ steps: [{ id: 'a', kind: 'delay', seconds: 0 }] });
      const runId = await startRun(flow.id);
      await waitForRun(runId, ['completed']);
      const asBob = { as: 'bob' };
      expect((await t.request('GET', `/api/v1/flows/${flow.id}`, asBob)).status).toBe(404);
      expect(
        (
          await t.request('PUT', `/api/v1/flows/${flow.id}`, {
            ...asBob,
            body: { name: 'x', trigger: { type: 'api' }, steps: [{ id: 'a', kind: 'delay', seconds: 0 }] },
          })
        ).status,
      ).toBe(404);
      expect((await t.request('DELETE', `/api/v1/flows/${flow.id}`, asBob)).status).toBe(404);
      expect((await t.request('POST', `/api/v1/flows/${flow.id}/runs`, { ...asBob, body: {} })).status).toBe(404);
      expect((await t.request('GET', `/api/v1/flows/runs/${runId}`, asBob)).status).toBe(404);
      expect((await t.request('POST', `/api/v1/flows/runs/${runId}/retry`, asBob)).status).toBe(404);
      const list = await t.request('GET', '/api/v1/flows/runs', asBob);
      expect(list.body.data.map((r: any) => r.id)).not.toContain(runId);
      // Still there for its owner.
      expect((await t.request('GET', `/api/v1/flows/${flow.id}`)).status).toBe(200);
    });

    const refused = async (steps: unknown[], trigger: unknown = { type: 'api' }) => {
      const res = await t.request('POST', '/api/v1/flows', { body: { name: 'bad', trigger, steps } });
      expect(res.status).toBe(400);
      return (res.body.errors as { field: string; message: string }[]).map((e) => e.message);
    };

    it('refuses a step pointing at a step that does not exist, naming the step and field', async () => {
      const messages = await refused([
        { id: 'a', kind: 'delay', seconds: 1, next: 'nowhere' },
        { id: 'b', kind: 'condition', if: 'true', then: 'a', else: 'ghost' },
        { id: 'c', kind: 'delay', seconds: 1, on_error: 'phantom' },
      ]);
      expect(messages).toEqual([
        expect.stringMatching(/^steps\[0\]\.next: must be a step id of this flow or "end"/),
        expect.stringMatching(/^steps\[1\]\.else: must be a step id/),
        expect.stringMatching(/^steps\[2\]\.on_error: must be "fail", "continue" or a step id/),
      ]);
    });

    it('refuses a flow that can loop forever (next, branches and on_error all count)', async () => {
      expect(
        await refused([
          { id: 'a', kind: 'delay', seconds: 1, next: 'b' },
          { id: 'b', kind: 'delay', seconds: 1, next: 'a' },
        ]),
      ).toEqual(['steps: the steps can loop forever (a → b → a); a flow must not go back']);
      const viaBranch = await refused([
        { id: 'a', kind: 'delay', seconds: 1 },
        { id: 'b', kind: 'condition', if: 'true', then: 'end', else: 'a' },
      ]);
      expect(viaBranch[0]).toMatch(/^steps: the steps can loop forever \(a → b → a\)/);
      const viaOnError = await refused([
        { id: 'a', kind: 'delay', seconds: 1 },
        { id: 'b', kind: 'task', task_type: 'subtitle_generation', input: { text: 'x' }, on_error: 'a' },
      ]);
      expect(viaOnError[0]).toMatch(/loop forever/);
    });

    it('refuses an expression that does not compile, in a condition and in a template', async () => {
      const messages = await refused([
        { id: 'a', kind: 'condition', if: 'steps.(' },
        { id: 'b', kind: 'task', task_type: 'subtitle_generation', input: { text: '{{ $$$( }}' } },
      ]);
      expect(messages[0]).toMatch(/^steps\[0\]\.if: invalid expression/);
      expect(messages[1]).toMatch(/^steps\[1\]\.input\.text: invalid expression/);
    });

    it('refuses fields wrong for the kind, unknown kinds, bad ids and bounds, all at once', async () => {
      const messages = await refused([
        { id: 'a', kind: 'task', input: {} },
        { id: 'b', kind: 'delay', seconds: 5, until: '2030-01-01T00:00:00Z' },
        { id: 'c', kind: 'teleport' },
        { id: 'c', kind: 'delay', seconds: 1, attempts: 11, timeout_ms: 10 },
        { id: 'end', kind: 'condition', if: 'true', cases: { x: 'a' } },
      ]);
      expect(messages).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^steps\[0\]\.task_type: must be one of /),
          'steps[1].seconds: a delay needs either seconds or until',
          'steps[2].kind: unknown kind "teleport"',
          'steps[3].id: "c" is used by an earlier step',
          'steps[3].attempts: must be a whole number from 1 to 10',
          'steps[3].timeout_ms: must be a whole number from 100 to 3600000',
          'steps[4].id: "end" is reserved (it ends the run)',
          'steps[4].cases: only with switch',
        ]),
      );
      expect(await refused([])).toEqual(['steps: a flow needs at least one step']);
      const many = Array.from({ length: 51 }, (_, i) => ({ id: `s${i}`, kind: 'delay', seconds: 0 }));
      expect(await refused(many)).toEqual(['steps: at most 50 steps, not 51']);
      expect(await refused([{ id: 'a', kind: 'delay', seconds: 0 }], { type: 'carrier-pigeon' })).toEqual([
        'trigger.type: must be webhook, api or schedule',
      ]);
    });
  });

  describe('runs', () => {
    it('runs task → condition → delay(1 s) → task to the end, each seeing the outputs before it', async () => {
      const flow = await createFlow({
        steps: [
          subtitles('{{ trigger.text }}'),
          {
            id: 'check',
            kind: 'condition',
            if: "steps.subs.status = 'completed' and $exists(steps.subs.task_id)",
            then: 'pause',
            else: 'end',
          },
          { id: 'pause', kind: 'delay', seconds: 1 },
          {
            id: 'again',
            kind: 'task',
            task_type: 'subtitle_generation',
            input: { text: "{{ 'Again: ' & trigger.text }}", metadata: { first_task: '{{ steps.subs.task_id }}' } },
          },
        ],
      });
      const started = Date.now();
      const runId = await startRun(flow.id, { text: 'Hello there. General Kenobi.' });
      const run = await waitForRun(runId, ['completed', 'failed']);
      expect(run.status).toBe('completed');
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      expect(run.steps.map((s: any) => [s.id, s.status, s.attempts])).toEqual([
        ['subs', 'completed', 1],
        ['check', 'completed', 1],
        ['pause', 'completed', 1],
        ['again', 'completed', 1],
      ]);
      expect(stepOf(run, 'check').output).toEqual({ value: true, next: 'pause' });
      const subs = stepOf(run, 'subs');
      expect(subs.output).toMatchObject({ task_id: subs.task_id, status: 'completed' });
      const again = stepOf(run, 'again');
      const task = await t.request('GET', `/api/v1/media/tasks/${again.task_id}`);
      expect(task.body.status).toBe('completed');
      expect(task.body.input.text).toBe('Again: Hello there. General Kenobi.');
      expect(task.body.metadata).toEqual({ first_task: subs.task_id });
      const [pausedAt, wokeAt] = [
        Date.parse(stepOf(run, 'pause').started_at),
        Date.parse(stepOf(run, 'pause').finished_at),
      ];
      expect(wokeAt - pausedAt).toBeGreaterThanOrEqual(1000);

      const mine = events.filter((e) => e.runId === runId).map((e) => `${e.type}${e.step ? `:${e.step.stepId}` : ''}`);
      expect(mine).toEqual([
        'flow.started',
        'flow.step.completed:subs',
        'flow.step.completed:check',
        'flow.step.completed:pause',
        'flow.step.completed:again',
        'flow.completed',
      ]);
      const listed = await t.request('GET', `/api/v1/flows/runs?flow_id=${flow.id}&status=completed`);
      expect(listed.body.data.map((r: any) => r.id)).toEqual([runId]);
    });

    it('fails a step whose rendered task input is invalid, naming the field, without a retry', async () => {
      const flow = await createFlow({
        steps: [
          {
            id: 'subs',
            kind: 'task',
            task_type: 'subtitle_generation',
            input: { text: '{{ trigger.text }}', format: 'docx' },
          },
        ],
      });
      const run = await waitForRun(await startRun(flow.id, { text: 'hi' }), ['completed', 'failed']);
      expect(run.status).toBe('failed');
      expect(run.error).toMatchObject({ code: 'input_invalid', step_id: 'subs' });
      expect(run.error.message).toMatch(/input\.format/);
      expect(stepOf(run, 'subs')).toMatchObject({ status: 'failed', attempts: 1, task_id: null });
    });

    const failingFlow = (onError: string) =>
      createFlow({
        steps: [
          { id: 'img', kind: 'task', task_type: 'image_generation', input: { prompt: 'a red fox' }, on_error: onError },
          { id: 'skipped', kind: 'condition', if: 'true', then: 'end' },
          { id: 'recover', kind: 'condition', if: "steps.img.status = 'failed'", then: 'end', else: 'end' },
        ],
      });

    it('on_error continue: the failed task step fails with the task error code and the run goes on', async () => {
      images.setScript(['permanent']);
      const flow = await failingFlow('continue');
      const run = await waitForRun(await startRun(flow.id), ['completed', 'failed']);
      expect(run.status).toBe('completed');
      expect(stepOf(run, 'img')).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'content_policy' } });
      expect(stepOf(run, 'skipped')).toMatchObject({ status: 'completed' });
    });

    it('on_error <step id>: the run jumps there, skipping the steps between', async () => {
      images.setScript(['permanent']);
      const flow = await failingFlow('recover');
      const run = await waitForRun(await startRun(flow.id), ['completed', 'failed']);
      expect(run.status).toBe('completed');
      expect(run.steps.map((s: any) => [s.id, s.status])).toEqual([
        ['img', 'failed'],
        ['recover', 'completed'],
      ]);
      expect(stepOf(run, 'recover').output).toEqual({ value: true, next: 'end' });
    });

    it('on_error fail: the run fails; retry runs it again from the failed step in a new round (409 otherwise)', async () => {
      images.setScript(['permanent']);
      const flow = await failingFlow('fail');
      const runId = await startRun(flow.id);
      const failed = await waitForRun(runId, ['completed', 'failed']);
      expect(failed.status).toBe('failed');
      expect(failed.error).toMatchObject({ code: 'content_policy', step_id: 'img' });
      expect(failed.steps.map((s: any) => s.id)).toEqual(['img']);
      expect(events.filter((e) => e.runId === runId).map((e) => e.type)).toEqual(['flow.started', 'flow.failed']);
      const firstTask = stepOf(failed, 'img').task_id;

      images.setScript(['ok']);
      const retry = await t.request('POST', `/api/v1/flows/runs/${runId}/retry`);
      expect(retry.status).toBe(202);
      expect(retry.body).toMatchObject({ round: 2, error: null });
      const done = await waitForRun(runId, ['completed', 'failed']);
      expect(done.status).toBe('completed');
      expect(stepOf(done, 'img')).toMatchObject({ status: 'completed', attempts: 1 });
      expect(stepOf(done, 'img').task_id).not.toBe(firstTask);
      expect((await t.request('POST', `/api/v1/flows/runs/${runId}/retry`)).status).toBe(409);
    });

    it('a delay of 10 minutes holds no worker; cancel ends the run and its job (409 after)', async () => {
      const flow = await createFlow({
        steps: [
          { id: 'nap', kind: 'delay', seconds: 600 },
          { id: 'after', kind: 'delay', seconds: 0 },
        ],
      });
      const runId = await startRun(flow.id);
      const waiting = await waitForRun(runId, ['waiting']);
      expect(stepOf(waiting, 'nap')).toMatchObject({ status: 'waiting' });
      expect(Date.parse(stepOf(waiting, 'nap').wake_at) - Date.now()).toBeGreaterThan(590_000);
      await waitUntil('the step job to be delayed', () => flowsQueue().getJobState(`${runId}.nap.1`), {
        until: (s) => s === 'delayed',
      });
      expect(await flowsQueue().getActiveCount()).toBe(0);

      const cancel = await t.request('POST', `/api/v1/flows/runs/${runId}/cancel`);
      expect(cancel.status).toBe(200);
      expect(cancel.body).toMatchObject({ status: 'cancelled' });
      expect(stepOf(cancel.body, 'nap').status).toBe('cancelled');
      expect(await flowsQueue().getJob(`${runId}.nap.1`)).toBeUndefined();
      expect((await t.request('POST', `/api/v1/flows/runs/${runId}/cancel`)).status).toBe(409);
      expect((await t.request('POST', `/api/v1/flows/runs/${runId}/retry`)).status).toBe(409);
      expect(events.filter((e) => e.runId === runId).map((e) => e.type)).toEqual(['flow.started', 'flow.cancelled']);
    });

    it("a completed step's job that runs again runs nothing: it only makes sure the next step's job exists", async () => {
      const flow = await createFlow({
        steps: [
          { id: 'first', kind: 'delay', seconds: 0 },
          { id: 'nap', kind: 'delay', seconds: 600 },
        ],
      });
      const runId = await startRun(flow.id);
      await waitForRun(runId, ['waiting']);
      const queue = flowsQueue();
      await waitUntil('the nap job to be delayed', () => queue.getJobState(`${runId}.nap.1`), {
        until: (s) => s === 'delayed',
      });
      const before = (await t.request('GET', `/api/v1/flows/runs/${runId}`)).body;
      // The next step's job is lost, and the completed step's job comes back (a crash before its end was recorded).
      await (await queue.getJob(`${runId}.nap.1`))!.remove();
      await (await queue.getJob(`${runId}.first.1`))?.remove();
      await queue.add('flow.step', { runId, stepId: 'first', round: 1 }, { jobId: `${runId}.first.1` });
      await waitUntil('the nap job to be back', () => queue.getJobState(`${runId}.nap.1`), {
        until: (s) => s === 'delayed',
      });
      const after = (await t.request('GET', `/api/v1/flows/runs/${runId}`)).body;
      expect(stepOf(after, 'first')).toEqual(stepOf(before, 'first'));
      expect(stepOf(after, 'first')).toMatchObject({ status: 'completed', attempts: 1 });
      expect(stepOf(after, 'nap')).toMatchObject({
        status: 'waiting',
        attempts: 1,
        wake_at: stepOf(before, 'nap').wake_at,
      });
      expect(events.filter((e) => e.runId === runId).map((e) => e.type)).toEqual([
        'flow.started',
        'flow.step.completed',
      ]);
      expect((await t.request('POST', `/api/v1/flows/runs/${runId}/cancel`)).status).toBe(200);
    });

    it('cancel of a run waiting on a task cancels that task too, and the step job then does nothing', async () => {
      images.setScript([{ delayMs: 5000 }]);
      const flow = await createFlow({
        steps: [
          { id: 'img', kind: 'task', task_type: 'image_generation', input: { prompt: 'slow' } },
          { id: 'after', kind: 'delay', seconds: 0 },
        ],
      });
      const runId = await startRun(flow.id);
      const waiting = await waitForRun(runId, ['waiting']);
      const taskId = stepOf(waiting, 'img').task_id;
      expect(taskId).toEqual(expect.any(String));
      expect((await t.request('POST', `/api/v1/flows/runs/${runId}/cancel`)).status).toBe(200);
      const task = await t.waitForTask(taskId, (x) => x.status === 'cancelled');
      expect(task.status).toBe('cancelled');
      const run = (await t.request('GET', `/api/v1/flows/runs/${runId}`)).body;
      expect(run.status).toBe('cancelled');
      expect(run.steps.map((s: any) => s.id)).toEqual(['img']);
      images.setScript(['permanent']);
    });

    it('Prefer: wait answers the finished run; an Idempotency-Key answers the first run again', async () => {
      const flow = await createFlow({ steps: [subtitles('{{ trigger.text }}')] });
      const waited = await t.request('POST', `/api/v1/flows/${flow.id}/runs`, {
        body: { input: { text: 'Short one.' } },
        headers: { prefer: 'wait=10' },
      });
      expect(waited.status).toBe(200);
      expect(waited.body).toMatchObject({ status: 'completed', run_id: waited.body.id });

      const headers = { 'idempotency-key': `k-${flow.id}` };
      const a = await t.request('POST', `/api/v1/flows/${flow.id}/runs`, { body: { input: { text: 'x' } }, headers });
      const b = await t.request('POST', `/api/v1/flows/${flow.id}/runs`, { body: { input: { text: 'x' } }, headers });
      expect(a.status).toBe(202);
      expect(b.status).toBe(202);
      expect(b.body.run_id).toBe(a.body.run_id);
      expect(b.headers.get('idempotent-replayed')).toBe('true');
    });

    it('streams a run as Server-Sent Events, ending with flow.completed', async () => {
      const flow = await createFlow({
        steps: [
          { id: 'a', kind: 'delay', seconds: 0 },
          { id: 'b', kind: 'condition', if: 'true', then: 'end' },
        ],
      });
      const runId = await startRun(flow.id);
      const res = await fetch(`${t.baseUrl}/api/v1/flows/runs/${runId}/events`, {
        headers: { authorization: `Bearer ${t.token('alice')}` },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      const text = await res.text();
      const types = [...text.matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
      expect(types).toEqual(['flow.started', 'flow.step.completed', 'flow.step.completed', 'flow.completed']);
      const other = await fetch(`${t.baseUrl}/api/v1/flows/runs/${runId}/events`, {
        headers: { authorization: `Bearer ${t.token('bob')}` },
      });
      expect(other.status).toBe(404);
    });
  });
});

describe('flow steps that fail for a while', () => {
  let t: TestApp;
  const images = new ScriptedProvider('slow-painter', [TaskType.ImageGeneration], [{ delayMs: 1500 }]);

  beforeAll(async () => {
    // One unfinished task per user: a step's create is refused (retryable) while another task of the user runs.
    t = await TestApp.start({
      providers: [images, new SubtitleEngineProvider()],
      env: { QUOTA_MAX_ACTIVE_TASKS: '1' },
    });
  });
  afterAll(async () => {
    await t.close();
  });

  const runOf = async (attempts: number) => {
    const flow = await t.request('POST', '/api/v1/flows', {
      body: {
        name: 'retrying',
        trigger: { type: 'api' },
        steps: [
          {
            id: 'subs',
            kind: 'task',
            task_type: 'subtitle_generation',
            input: { text: 'Once more.' },
            attempts,
            backoff_ms: 300,
          },
        ],
      },
    });
    expect(flow.status).toBe(201);
    const busy = await t.request('POST', '/api/v1/media/images/generate', { body: { prompt: 'keeps the slot' } });
    expect(busy.status).toBe(202);
    const started = await t.request('POST', `/api/v1/flows/${flow.body.id}/runs`, { body: {} });
    const runId = started.body.run_id as string;
    const read = async () => (await t.request('GET', `/api/v1/flows/runs/${runId}`)).body;
    const run = await waitUntil('the run to end', read, {
      intervalMs: 50,
      until: (r) => ['completed', 'failed'].includes(r.status),
    });
    await t.waitForTask(busy.body.id, (x) => x.status === 'completed');
    return run;
  };

  it('retries a retryable failure after its backoff, doubling, until it succeeds', async () => {
    const run = await runOf(6);
    expect(run.status).toBe('completed');
    const step = run.steps[0];
    expect(step.status).toBe('completed');
    // 1.5 s of a busy slot against waits of 0.3, 0.6, 1.2, 2.4 s: the fourth try gets through (the fifth when slow).
    expect(step.attempts).toBeGreaterThanOrEqual(3);
    expect(step.attempts).toBeLessThanOrEqual(6);
    expect(step.error).toBeNull();
  });

  it('fails the run once the attempts are spent, with the last error', async () => {
    const run = await runOf(1);
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ code: 'quota_exceeded', step_id: 'subs' });
    expect(run.steps[0]).toMatchObject({ status: 'failed', attempts: 1, task_id: null });
  });
});
