import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { mediaServer } from './support/media-server';
import { freePort, TestApp } from './support/test-app';
import { WebhookReceiver } from './support/webhook-receiver';
import { waitUntil } from './support/wait';

/** The deployment's own signing secret: notify steps without one of their own sign with it. */
const DEPLOYMENT_SECRET = 'flow-examples-deployment-secret-0123456789';
/** The same secret as Standard Webhooks verifiers take it (the raw bytes, base64). */
const DEPLOYMENT_SECRET_KEY = Buffer.from(DEPLOYMENT_SECRET).toString('base64');
const FAST = { PROVIDER_POLL_SCALE: '0.02', WEBHOOK_SECRET: DEPLOYMENT_SECRET };
const NOTIFY_SECRET = `whsec_${Buffer.from('flow-examples-notify-secret-0123456789').toString('base64')}`;

/** An example of examples/flows, with its example hosts pointed at this test's loopback servers. */
function example(name: string, hosts: Record<string, string> = {}): Record<string, unknown> {
  let text = readFileSync(join(__dirname, '..', 'examples', 'flows', `${name}.json`), 'utf8');
  for (const [from, to] of Object.entries(hosts)) text = text.split(from).join(to);
  return JSON.parse(text) as Record<string, unknown>;
}

function probe(file: string): { streams: { codec_type: string }[]; format: { duration: string } } {
  const args = ['-v', 'error', '-show_entries', 'stream=codec_type:format=duration', '-of', 'json', file];
  return JSON.parse(execFileSync('ffprobe', args).toString()) as ReturnType<typeof probe>;
}

describe('the flows shipped in examples/flows, end to end in the sandbox', () => {
  let t: TestApp;
  let media: { server: Server; url: string };
  let receiver: WebhookReceiver;
  const dir = mkdtempSync(join(tmpdir(), 'flow-examples-'));

  beforeAll(async () => {
    media = await mediaServer(dir);
    receiver = await WebhookReceiver.start();
    // Outputs on local storage are linked on PUBLIC_BASE_URL: later steps hand them to providers that fetch them.
    const port = await freePort();
    t = await TestApp.start({ port, sandbox: {}, env: { ...FAST, PUBLIC_BASE_URL: `http://127.0.0.1:${port}` } });
  });
  afterAll(async () => {
    await t.close();
    await receiver.close();
    media.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function create(definition: Record<string, unknown>): Promise<any> {
    const res = await t.request('POST', '/api/v1/flows', { body: definition });
    expect([res.status, res.body.message]).toEqual([201, undefined]);
    return res.body;
  }

  async function finished(runId: string, timeoutMs = 60000): Promise<any> {
    let run: any;
    await waitUntil(
      `run ${runId} to end`,
      async () => {
        run = (await t.request('GET', `/api/v1/flows/runs/${runId}`)).body;
        return ['completed', 'failed', 'cancelled'].includes(run.status);
      },
      { timeoutMs },
    );
    return run;
  }

  it('1. img2vid → subtitles → caption → addaudio → a signed notification with the final video', async () => {
    const flow = await create(example('video-chain'));
    const res = await t.request('POST', `/api/v1/flows/${flow.id}/runs`, {
      body: {
        input: {
          image_url: `${media.url}/frame.png`,
          seconds: 2,
          script: 'A lighthouse at dawn. The sea is calm.',
          audio_url: `${media.url}/talk.mp3`,
          notify_url: `${receiver.url}/video-ready`,
        },
      },
    });
    expect(res.status).toBe(202);
    const run = await finished(res.body.run_id, 90000);
    expect([run.status, run.error]).toEqual(['completed', null]);
    expect(run.steps.map((s: any) => [s.id, s.status])).toEqual([
      ['clip', 'completed'],
      ['subs', 'completed'],
      ['captioned', 'completed'],
      ['final', 'completed'],
      ['tell', 'completed'],
    ]);
    const [note] = await receiver.waitFor((all) => all.some((r) => r.path === '/video-ready'));
    const told = receiver.on('/video-ready')[0] ?? note;
    expect(told.json).toEqual({ video_url: run.steps[3].output.files[0].url, run_id: run.id });
    // The final video is real: a video stream from the caption step, the audio from the trigger.
    const url: string = told.json.video_url;
    const file = join(dir, 'final.mp4');
    writeFileSync(
      file,
      Buffer.from(await (await fetch(url.startsWith('http') ? url : `${t.baseUrl}${url}`)).arrayBuffer()),
    );
    expect(
      probe(file)
        .streams.map((s) => s.codec_type)
        .sort(),
    ).toEqual(['audio', 'video']);
  }, 120000);

  it('2. a chatbot hook: the message text picks the reply, sent to the messaging API; a failed reply alerts', async () => {
    const flow = await create(
      example('chatbot-hook', {
        'https://messaging.example.com': `${receiver.url}/messaging`,
        'https://ops.example.com': `${receiver.url}/ops`,
      }),
    );
    expect(flow.hook_url).toMatch(/^\/hooks\/[A-Za-z0-9_-]{24,}$/);
    receiver.answer((req, _n, res) => {
      // The messaging API refuses one recipient for good (a 4xx is not retried).
      if (req.path.startsWith('/messaging') && req.json?.to === 'blocked') return void res.writeHead(400).end('{}');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    const post = (message: Record<string, string>, id: string) =>
      t.request('POST', flow.hook_url, { body: { message }, headers: { 'webhook-id': id }, token: null });
    const price = await post({ from: '+100', name: 'Ana', text: 'What is the PRICE?' }, 'm1');
    const hello = await post({ from: '+200', name: 'Bo', text: 'hello there' }, 'm2');
    const blocked = await post({ from: 'blocked', name: 'Cy', text: 'hi' }, 'm3');
    expect([price.status, hello.status, blocked.status]).toEqual([202, 202, 202]);
    const runs = await Promise.all([price, hello, blocked].map((r) => finished(r.body.run_id)));
    expect(runs.map((r) => r.status)).toEqual(['completed', 'completed', 'completed']);
    const stepsOf = (run: any) => run.steps.map((s: any) => [s.id, s.status]);
    expect(stepsOf(runs[0])).toEqual([
      ['route', 'completed'],
      ['price_reply', 'completed'],
    ]);
    expect(stepsOf(runs[1])).toEqual([
      ['route', 'completed'],
      ['default_reply', 'completed'],
    ]);
    expect(stepsOf(runs[2])).toEqual([
      ['route', 'completed'],
      ['default_reply', 'failed'],
      ['alert', 'completed'],
    ]);
    const sent = receiver.on('/messaging/v1/messages').map((r) => r.json);
    expect(sent).toEqual(
      expect.arrayContaining([
        { to: '+100', text: expect.stringContaining('plans start at') },
        { to: '+200', text: 'Thanks, Bo! Someone will answer shortly.' },
      ]),
    );
    const [alert] = receiver.on('/ops/alerts');
    expect(alert.json).toMatchObject({ problem: 'a chatbot reply could not be sent', to: 'blocked' });
    // The same sender event again is the same run.
    const again = await post({ from: '+100', name: 'Ana', text: 'What is the PRICE?' }, 'm1');
    expect(again.body.run_id).toBe(price.body.run_id);
  }, 60000);

  it('3. a nightly schedule: two transcripts, then one summary notification', async () => {
    const definition = example('nightly-transcripts', {
      'https://media.example.com/recordings/standup.mp3': `${media.url}/talk.mp3`,
      'https://media.example.com/recordings/review.mp3': `${media.url}/talk.mp3`,
      'https://ops.example.com': `${receiver.url}/ops`,
    });
    (definition.steps as any[]).find((s) => s.id === 'summary').secret = NOTIFY_SECRET;
    const flow = await create(definition);
    // Its next ticks are at 02:00 UTC.
    expect(flow.next_ticks.length).toBeGreaterThan(0);
    expect(flow.next_ticks[0]).toMatch(/T02:00:00(\.000)?Z$/);
    // Run now, as a tick would.
    const res = await t.request('POST', `/api/v1/flows/${flow.id}/runs`, {
      body: { input: { scheduled_at: '2026-12-04T02:00:00.000Z' } },
    });
    const run = await finished(res.body.run_id);
    expect(run.status).toBe('completed');
    // Its tasks have the flow's priority.
    const task = await t.request('GET', `/api/v1/media/tasks/${run.steps[0].task_id}`);
    expect([task.status, task.body.priority]).toEqual([200, 'low']);
    const [summary] = await receiver.waitFor((all) => all.some((r) => r.path === '/ops/transcripts'));
    const got = receiver.on('/ops/transcripts')[0] ?? summary;
    expect(got.json.scheduled_at).toBe('2026-12-04T02:00:00.000Z');
    expect(got.json.transcripts.map((x: any) => [x.name, x.status])).toEqual([
      ['standup', 'completed'],
      ['review', 'completed'],
    ]);
    expect(got.json.transcripts[0].text).toEqual(expect.any(String));
    // Signed as task webhooks are: Standard Webhooks headers over the body.
    const headers = got.headers as Record<string, string>;
    expect(() => new Webhook(NOTIFY_SECRET).verify(got.body, headers)).not.toThrow();
  }, 60000);

  it("sends a run's events to the flow's webhook_url, signed, in order, filtered by webhook_events", async () => {
    const steps = [
      { id: 'check', kind: 'condition', if: 'trigger.ok', then: 'end', else: 'end' },
      { id: 'never', kind: 'delay', seconds: 1 },
    ];
    const all = await create({
      name: 'events',
      trigger: { type: 'api' },
      steps,
      webhook_url: `${receiver.url}/flow-events`,
    });
    const some = await create({
      name: 'some events',
      trigger: { type: 'api' },
      steps,
      webhook_url: `${receiver.url}/flow-done`,
      webhook_events: ['flow.completed'],
    });
    const run = (await t.request('POST', `/api/v1/flows/${all.id}/runs`, { body: { input: { ok: true } } })).body
      .run_id;
    const other = (await t.request('POST', `/api/v1/flows/${some.id}/runs`, { body: { input: { ok: true } } })).body
      .run_id;
    await Promise.all([finished(run), finished(other)]);
    await receiver.waitFor(
      () => receiver.on('/flow-events').length >= 3 && receiver.on('/flow-done').length >= 1,
      15000,
    );
    const got = receiver.on('/flow-events');
    expect(got.map((r) => r.json.type)).toEqual(['flow.started', 'flow.step.completed', 'flow.completed']);
    expect(got[1].json.data).toMatchObject({
      run_id: run,
      flow_id: all.id,
      step: { id: 'check', status: 'completed' },
    });
    for (const r of got) {
      expect(() =>
        new Webhook(DEPLOYMENT_SECRET_KEY).verify(r.body, r.headers as Record<string, string>),
      ).not.toThrow();
    }
    expect(receiver.on('/flow-done').map((r) => [r.json.type, r.json.data.run_id])).toEqual([
      ['flow.completed', other],
    ]);
  }, 30000);
});
