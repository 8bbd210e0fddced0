import { ctxFor, pollToEnd, providerError, submitAsync } from '../../../../test/support/adapter-testing';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { AppConfig } from '../../../config/app-config';
import { TaskInputOf } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { PollOutcome, ProviderErrorCode, ProviderJobRef, ProviderOutput } from '../../provider.port';
import { createAssemblyAiEmulator } from '../../../../sandbox/emulators/assemblyai.emulator';
import {
  DEFAULT_KNOBS,
  EmulatorKnobs,
  EmulatorStats,
  SANDBOX_API_KEY,
} from '../../../../sandbox/emulators/emulator-knobs';
import { subtitleText } from '../openai/openai-whisper.adapter';
import { AssemblyAiAdapter } from './assemblyai.adapter';

const T = TaskType.AudioTranscription;
/** 3 s of audio at the emulator's 16 kB a second. */
const AUDIO_BYTES = 48_000;
const SPOKEN = `This is a sandbox transcript of ${AUDIO_BYTES} bytes of audio.`;

/** Fields AssemblyAI's OpenAPI document marks required on a Transcript (assemblyai-api-spec openapi.json). */
const TRANSCRIPT_REQUIRED = [
  'id',
  'speech_model',
  'language_model',
  'acoustic_model',
  'status',
  'audio_url',
  'webhook_auth',
  'auto_highlights',
  'redact_pii',
  'summarization',
  'language_confidence_threshold',
  'language_confidence',
];

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

function configFor(baseUrl: string, extra: Record<string, string> = {}): AppConfig {
  return AppConfig.fromEnv({
    ASSEMBLYAI_API_KEY: SANDBOX_API_KEY,
    ASSEMBLYAI_BASE_URL: baseUrl,
    PROVIDER_HTTP_TIMEOUT_MS: '2000',
    // The user's audio is served from loopback here.
    WEBHOOK_ALLOW_PRIVATE: 'true',
    ...extra,
  });
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function completed(outcome: PollOutcome | undefined): ProviderOutput & { cost?: { amount: number } } {
  if (outcome?.kind !== 'completed') throw new Error(`not completed: ${JSON.stringify(outcome)}`);
  return { ...outcome.output, cost: outcome.cost };
}

describe('AssemblyAiAdapter against the AssemblyAI emulator', () => {
  const knobs: EmulatorKnobs = { ...DEFAULT_KNOBS };
  const stats = new EmulatorStats();
  const seen: Seen[] = [];
  let emulator: FastifyInstance;
  let baseUrl: string;
  let audio: Server;
  let audioBase: string;
  let adapter: AssemblyAiAdapter;

  const input = (extra: Partial<TaskInputOf<typeof T>> = {}) => ({ audio_url: `${audioBase}/talk.mp3`, ...extra });
  const api = (path: string, init: { method?: string; body?: unknown; key?: string } = {}) =>
    request(`${baseUrl}${path}`, {
      method: (init.method ?? 'GET') as 'GET',
      headers: {
        authorization: init.key ?? SANDBOX_API_KEY,
        ...(init.body !== undefined && { 'content-type': 'application/json' }),
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });

  beforeAll(async () => {
    emulator = createAssemblyAiEmulator({ knobs, stats });
    emulator.addHook('onRequest', async (req) => {
      seen.push({ method: req.method, url: req.url, headers: req.headers });
    });
    await emulator.listen({ port: 0, host: '127.0.0.1' });
    baseUrl = `http://127.0.0.1:${(emulator.server.address() as AddressInfo).port}`;
    audio = createServer((req, res) => {
      const files: Record<string, [string, Buffer]> = {
        '/talk.mp3': ['audio/mpeg', Buffer.alloc(AUDIO_BYTES, 7)],
        '/blip.wav': ['audio/wav', Buffer.alloc(1000, 7)],
        '/page.mp3': ['text/html', Buffer.from('<!DOCTYPE html><html><body>not audio</body></html>')],
      };
      const file = files[req.url ?? ''];
      if (!file) return void res.writeHead(404).end('not found');
      res.writeHead(200, { 'content-type': file[0] }).end(file[1]);
    });
    audioBase = await listen(audio);
    adapter = new AssemblyAiAdapter(configFor(baseUrl));
  });

  beforeEach(() => {
    Object.assign(knobs, DEFAULT_KNOBS, { asyncSteps: 2 });
    stats.reset();
    seen.length = 0;
  });

  afterAll(async () => {
    await emulator.close();
    audio.closeAllConnections();
    await new Promise((resolve) => audio.close(resolve));
  });

  it('describes itself, is configured only with a key, and prices a minute before it knows the length', () => {
    expect(adapter.name).toBe('assemblyai');
    expect(adapter.taskTypes).toEqual([TaskType.AudioTranscription]);
    expect(adapter.qualityScore).toBe(0.85);
    expect(adapter.isConfigured()).toBe(true);
    expect(new AssemblyAiAdapter(AppConfig.fromEnv({})).isConfigured()).toBe(false);
    // $0.21 an hour on Universal-3 Pro; $0.15 on Universal-2; +$0.02 with speaker labels.
    expect(adapter.estimateCost({ type: T, input: input() })).toEqual({ amount: 0.0035, currency: 'USD' });
    expect(adapter.estimateCost({ type: T, input: input({ model: 'universal-2' }) }).amount).toBe(0.0025);
    expect(adapter.estimateCost({ type: T, input: input({ speaker_labels: true }) }).amount).toBe(0.003833);
  });

  it('uploads the bytes it downloaded, then asks for a transcript of that upload with the key alone', async () => {
    const { job, pollAfterMs } = await submitAsync(adapter, { type: T, input: input({ response_format: 'srt' }) });

    expect(job).toEqual({
      id: expect.any(String),
      format: 'srt',
      speech_models: ['universal-3-pro', 'universal-2'],
      speaker_labels: false,
      bytes: AUDIO_BYTES,
    });
    expect(pollAfterMs).toBe(3000);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(['POST /v2/upload', 'POST /v2/transcript']);
    for (const s of seen) expect(s.headers.authorization).toBe(SANDBOX_API_KEY);
    expect(seen[0].headers['content-type']).toBe('application/octet-stream');
    expect(seen[1].headers['content-type']).toBe('application/json');
    const [upload, params] = stats.lastBodies as [{ bytes: number }, Record<string, unknown>];
    expect(upload).toEqual({ bytes: AUDIO_BYTES });
    // AssemblyAI never sees the user's URL: only its own upload's.
    expect(params).toEqual({
      audio_url: expect.stringMatching(new RegExp(`^${baseUrl}/upload/[0-9a-f-]{36}$`)),
      speech_models: ['universal-3-pro', 'universal-2'],
      language_detection: true,
    });
    expect(stats.submissions).toBe(1);
  });

  it('polls queued and processing without holding on, then keeps AssemblyAI’s JSON transcript, priced to the second', async () => {
    const { ctx, job } = await submitAsync(adapter, { type: T, input: input() });
    const outcomes = await pollToEnd(adapter, ctx, job);

    expect(outcomes.map((o) => o.kind)).toEqual(['running', 'running', 'completed']);
    expect(outcomes[0]).toEqual({ kind: 'running', pollAfterMs: 3000 });
    const output = completed(outcomes[2]);
    expect(output.data).toEqual({
      text: expect.stringContaining(SPOKEN),
      format: 'json',
      model: 'universal-3-pro',
      assemblyai_transcript_id: job.id,
      language: 'en',
      duration_s: 3,
    });
    const [artifact] = output.artifacts;
    expect(artifact).toMatchObject({ contentType: 'application/json', filename: 'transcript.json' });
    const stored = JSON.parse(artifact.data!.toString('utf8')) as Record<string, unknown> & {
      words: { text: string; start: number; end: number }[];
    };
    expect(Object.keys(stored)).toEqual(expect.arrayContaining(TRANSCRIPT_REQUIRED));
    expect(stored).toMatchObject({
      id: job.id,
      status: 'completed',
      audio_duration: 3,
      speech_model_used: 'universal-3-pro',
    });
    expect(stored.words.map((w) => w.text).join(' ')).toBe(output.data!.text);
    expect(stored.words.at(-1)!.end).toBe(3000);
    // 3 s at $0.21 an hour.
    expect(output.cost).toEqual({ amount: 0.000175, currency: 'USD' });
    expect(stats.inFlight).toBe(0);
  });

  it.each([
    ['srt', 'application/x-subrip', 'transcript.srt', /^1\n00:00:00,000 --> 00:00:0\d,\d{3}\n/],
    ['vtt', 'text/vtt', 'transcript.vtt', /^WEBVTT\n\n00:00\.000 --> 00:0\d\.\d{3}\n/],
  ] as const)(
    'fetches %s subtitles made by AssemblyAI once the transcript is done',
    async (format, type, filename, shape) => {
      const { ctx, job } = await submitAsync(adapter, { type: T, input: input({ response_format: format }) });
      const output = completed((await pollToEnd(adapter, ctx, job)).pop());

      expect(seen.at(-1)).toMatchObject({ method: 'GET', url: `/v2/transcript/${job.id}/${format}` });
      const [artifact] = output.artifacts;
      expect(artifact).toMatchObject({ contentType: type, filename });
      const document = artifact.data!.toString('utf8');
      expect(document).toMatch(shape);
      expect(subtitleText(document)).toBe(output.data!.text);
      expect(output.data!.format).toBe(format);
    },
  );

  it('keeps a text transcript as plain text', async () => {
    const { ctx, job } = await submitAsync(adapter, { type: T, input: input({ response_format: 'text' }) });
    const output = completed((await pollToEnd(adapter, ctx, job)).pop());
    expect(output.artifacts[0]).toMatchObject({ contentType: 'text/plain', filename: 'transcript.txt' });
    expect(output.artifacts[0].data!.toString('utf8')).toBe(output.data!.text);
  });

  it('passes a language and a pinned model on, and prices by the model AssemblyAI used', async () => {
    const { ctx, job } = await submitAsync(adapter, {
      type: T,
      input: input({ language: 'ja', model: 'universal-2' }),
    });
    expect(stats.lastBodies[1]).toEqual({
      audio_url: expect.any(String),
      speech_models: ['universal-2'],
      language_code: 'ja',
    });
    const output = completed((await pollToEnd(adapter, ctx, job)).pop());
    expect(output.data).toMatchObject({ model: 'universal-2', language: 'ja' });
    expect(output.cost!.amount).toBe(0.000125); // 3 s at $0.15 an hour

    // Japanese with the default list: AssemblyAI falls back to Universal-2 by itself.
    const fallback = await submitAsync(adapter, { type: T, input: input({ language: 'ja' }) });
    const done = completed((await pollToEnd(adapter, fallback.ctx, fallback.job)).pop());
    expect(done.data!.model).toBe('universal-2');
  });

  it('labels speakers when asked: utterances by speaker in the output, at the add-on’s price', async () => {
    const { ctx, job } = await submitAsync(adapter, {
      type: T,
      input: input({ speaker_labels: true, language: 'en' }),
    });
    expect(stats.lastBodies[1]).toMatchObject({ speaker_labels: true, language_code: 'en' });
    expect(job.speaker_labels).toBe(true);
    const output = completed((await pollToEnd(adapter, ctx, job)).pop());
    const utterances = output.data!.utterances as { speaker: string; start_s: number; end_s: number; text: string }[];
    expect(utterances.map((u) => u.speaker)).toEqual(['A', 'B']);
    expect(utterances[0]).toMatchObject({ start_s: 0, text: SPOKEN });
    expect(utterances[1].end_s).toBe(3);
    expect(output.cost!.amount).toBe(0.000192); // 3 s at $0.23 an hour, rounded to the micro-dollar
  });

  it('re-attaches: a fresh adapter polls a stored job, or only its id, to the end', async () => {
    const { job } = await submitAsync(adapter, {
      type: T,
      input: input({ response_format: 'vtt', model: 'universal-2' }),
    });
    const stored = JSON.parse(JSON.stringify(job)) as ProviderJobRef;
    const fresh = new AssemblyAiAdapter(configFor(baseUrl));
    const ctx = ctxFor({ type: T, input: input({ response_format: 'vtt', model: 'universal-2' }) });
    const done = completed((await pollToEnd(fresh, ctx, stored)).pop());
    expect(done.artifacts[0].contentType).toBe('text/vtt');
    expect(stats.submissions).toBe(1);

    const bare = await submitAsync(adapter, {
      type: T,
      input: input({ response_format: 'srt', speaker_labels: true }),
    });
    const fromInput = completed(
      (
        await pollToEnd(fresh, ctxFor({ type: T, input: input({ response_format: 'srt', speaker_labels: true }) }), {
          id: bare.job.id,
        })
      ).pop(),
    );
    expect(fromInput.artifacts[0].contentType).toBe('application/x-subrip');
    expect(fromInput.data!.utterances).toHaveLength(2);
  });

  it('cancels a finished transcript with DELETE (its text and audio go), and a running one as far as AssemblyAI can', async () => {
    const { ctx, job } = await submitAsync(adapter, { type: T, input: input() });
    await pollToEnd(adapter, ctx, job);
    await adapter.cancel(job);
    expect(seen.at(-1)).toMatchObject({ method: 'DELETE', url: `/v2/transcript/${job.id}` });
    expect(seen.at(-1)!.headers.authorization).toBe(SANDBOX_API_KEY);
    const gone = (await (await api(`/v2/transcript/${job.id}`)).body.json()) as Record<string, unknown>;
    expect(gone).toMatchObject({ status: 'completed', text: 'Deleted by user.', words: null });

    // Still processing: AssemblyAI answers 400 and goes on; cancel is done, not an error.
    knobs.stuckRate = 1;
    const stuck = await submitAsync(adapter, { type: T, input: input() });
    for (let i = 0; i < 4; i++) expect((await adapter.poll(stuck.ctx, stuck.job)).kind).toBe('running');
    await expect(adapter.cancel(stuck.job)).resolves.toBeUndefined();
    const refused = await api(`/v2/transcript/${stuck.job.id}`, { method: 'DELETE' });
    expect(refused.statusCode).toBe(400);
    expect(((await refused.body.json()) as { error: string }).error).toMatch(/still processing/);
    await expect(adapter.cancel({ id: 'no-such-transcript' })).resolves.toBeUndefined();
  });

  it('names what AssemblyAI cannot do, and refuses it before any call', async () => {
    expect(adapter.validate({ type: T, input: input() })).toEqual([]);
    expect(
      adapter.validate({ type: T, input: input({ model: 'universal-3-pro', language: 'pt', response_format: 'vtt' }) }),
    ).toEqual([]);
    expect(adapter.validate({ type: T, input: input({ model: 'whisper-1', language: 'xx' }) })).toEqual([
      { field: 'model', message: 'model: assemblyai cannot serve "whisper-1" (it runs universal-3-pro, universal-2)' },
      { field: 'language', message: 'language: assemblyai cannot transcribe "xx"' },
    ]);
    expect(adapter.validate({ type: T, input: input({ model: 'universal-3-pro', language: 'ja' }) })).toEqual([
      { field: 'language', message: 'language: universal-3-pro transcribes en, es, pt, de, fr, it only' },
    ]);

    const err = await providerError(adapter.start(ctxFor({ type: T, input: input({ model: 'whisper-1' }) })));
    expect(err).toMatchObject({ code: ProviderErrorCode.InputInvalid, retryable: false });
    expect(seen).toHaveLength(0);
  });

  it('fails an audio_url that cannot be fetched before uploading anything', async () => {
    const err = await providerError(
      adapter.start(ctxFor({ type: T, input: input({ audio_url: `${audioBase}/missing.mp3` }) })),
    );
    expect(err).toMatchObject({ code: ProviderErrorCode.InputUnreachable, retryable: false });
    expect(seen).toHaveLength(0);
  });

  it('fails a bad key for good (401, AssemblyAI’s message)', async () => {
    const wrong = new AssemblyAiAdapter(configFor(baseUrl, { ASSEMBLYAI_API_KEY: 'not-the-key' }));
    const err = await providerError(wrong.start(ctxFor({ type: T, input: input() })));
    expect(err).toMatchObject({ code: ProviderErrorCode.AuthFailed, retryable: false, status: 401 });
    expect(err.message).toBe('assemblyai answered 401: Authentication error, API token missing/invalid');
    expect(err.message).not.toContain('not-the-key');
    expect(stats.submissions).toBe(0);
  });

  it('retries a 429 after its Retry-After, on submit and on poll', async () => {
    knobs.rateLimitRate = 1;
    const err = await providerError(adapter.start(ctxFor({ type: T, input: input() })));
    expect(err).toMatchObject({
      code: ProviderErrorCode.RateLimited,
      retryable: true,
      retryAfterMs: 1000,
      status: 429,
    });
    expect(err.message).toContain('Too Many Requests');

    knobs.rateLimitRate = 0;
    const { ctx, job } = await submitAsync(adapter, { type: T, input: input() });
    knobs.rateLimitRate = 1;
    const onPoll = await providerError(adapter.poll(ctx, job));
    expect(onPoll).toMatchObject({ code: ProviderErrorCode.RateLimited, retryable: true, retryAfterMs: 1000 });
  });

  it('passes AssemblyAI’s 400 {error} on as a permanent invalid request', async () => {
    const server = createServer((req, res) => {
      if (req.url === '/v2/upload') {
        return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"upload_url":"https://cdn/x"}');
      }
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'The following models are not available in this language: speaker_labels' }));
    });
    try {
      const strict = new AssemblyAiAdapter(configFor(await listen(server)));
      const err = await providerError(strict.start(ctxFor({ type: T, input: input({ speaker_labels: true }) })));
      expect(err).toMatchObject({ code: ProviderErrorCode.InvalidRequest, retryable: false, status: 400 });
      expect(err.message).toBe(
        'assemblyai answered 400: The following models are not available in this language: speaker_labels',
      );
    } finally {
      server.close();
    }
  });

  it('retries a 500 and an unreachable AssemblyAI', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"Internal Server Error"}');
    });
    try {
      const broken = new AssemblyAiAdapter(configFor(await listen(server)));
      const err = await providerError(broken.start(ctxFor({ type: T, input: input() })));
      expect(err).toMatchObject({ code: ProviderErrorCode.Unavailable, retryable: true, status: 500 });
    } finally {
      server.close();
    }
    const closed = createServer();
    const closedUrl = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    const err = await providerError(
      new AssemblyAiAdapter(configFor(closedUrl)).start(ctxFor({ type: T, input: input() })),
    );
    expect(err).toMatchObject({ code: ProviderErrorCode.Network, retryable: true });
  });

  it('turns a transcript that ended in error into the failure its reason calls for', async () => {
    knobs.failureRate = 1;
    const failing = await submitAsync(adapter, { type: T, input: input() });
    const serverError = await providerError(pollToEnd(adapter, failing.ctx, failing.job));
    expect(serverError).toMatchObject({ code: ProviderErrorCode.Unavailable, retryable: true });
    expect(serverError.message).toBe('assemblyai transcript failed: Server error, developers have been alerted.');
    knobs.failureRate = 0;

    const short = await submitAsync(adapter, { type: T, input: input({ audio_url: `${audioBase}/blip.wav` }) });
    const tooShort = await providerError(adapter.poll(short.ctx, short.job));
    expect(tooShort).toMatchObject({ code: ProviderErrorCode.InputInvalid, retryable: false });
    expect(tooShort.message).toBe('assemblyai transcript failed: Audio duration is too short.');

    const page = await submitAsync(adapter, { type: T, input: input({ audio_url: `${audioBase}/page.mp3` }) });
    const notAudio = await providerError(adapter.poll(page.ctx, page.job));
    expect(notAudio).toMatchObject({ code: ProviderErrorCode.InputInvalid, retryable: false });
    expect(notAudio.message).toContain('does not appear to contain audio');

    // A URL AssemblyAI cannot fetch (the adapter never sends one: it uploads).
    const created = await api('/v2/transcript', {
      method: 'POST',
      body: { audio_url: 'https://example.com/talk.mp3', speech_models: ['universal-2'] },
    });
    const { id } = (await created.body.json()) as { id: string };
    const unreachable = await providerError(adapter.poll(ctxFor({ type: T, input: input() }), { id }));
    expect(unreachable).toMatchObject({ code: ProviderErrorCode.InputUnreachable, retryable: false });
    expect(stats.inFlight).toBe(0);
  });

  it('fails for good when AssemblyAI no longer knows the transcript', async () => {
    const err = await providerError(
      adapter.poll(ctxFor({ type: T, input: input() }), { id: 'c0ffee00-0000-4000-8000-000000000000' }),
    );
    expect(err).toMatchObject({ code: ProviderErrorCode.NotFound, retryable: false });
    expect(err.message).toMatch(/^job expired/);
  });

  it('emulator: the key alone, AssemblyAI’s 400 wording for bad parameters, subtitles only once completed', async () => {
    const bearer = await api('/v2/transcript/x', { key: `Bearer ${SANDBOX_API_KEY}` });
    expect(bearer.statusCode).toBe(401);
    expect(await bearer.body.json()).toEqual({ error: 'Authentication error, API token missing/invalid' });
    expect(bearer.headers['x-sandbox']).toBe('true');

    const post = async (body: Record<string, unknown>) => {
      const res = await api('/v2/transcript', { method: 'POST', body });
      return { status: res.statusCode, body: (await res.body.json()) as { error?: string; status?: string } };
    };
    const ok = { audio_url: 'https://example.com/a.mp3', speech_models: ['universal-3-pro'] };
    expect(await post(ok)).toMatchObject({ status: 200, body: { status: 'queued' } });
    expect(await post({ ...ok, speaker_labels: 'yes' })).toEqual({
      status: 400,
      body: { error: 'speaker_labels must be a Boolean' },
    });
    expect((await post({ audio_url: ok.audio_url })).body.error).toBe('speech_models is required');
    expect((await post({ ...ok, speech_models: ['nano'] })).body.error).toBe(
      'speech_models must be a non-empty list of: universal-3-pro, universal-2',
    );
    expect((await post({ ...ok, language_code: 'ja' })).body.error).toBe(
      'The following models are not available in this language: universal-3-pro',
    );
    expect((await post({ ...ok, language_code: 'xx' })).body.error).toBe('language_code "xx" is not supported');
    expect((await post({ ...ok, colour: 'red' })).body.error).toBe('colour is not a valid parameter');

    const { job } = await submitAsync(adapter, { type: T, input: input() });
    const early = await api(`/v2/transcript/${job.id}/srt`);
    expect(early.statusCode).toBe(400);
    expect(((await early.body.json()) as { error: string }).error).toMatch(/not completed/);
    await pollToEnd(adapter, ctxFor({ type: T, input: input() }), job);
    const narrow = await api(`/v2/transcript/${job.id}/srt?chars_per_caption=20`);
    const cues = (await narrow.body.text()).trim().split('\n\n');
    expect(cues.length).toBeGreaterThan(4);
    for (const cue of cues) expect(cue.split('\n')[2].length).toBeLessThanOrEqual(20);
    const unknown = await api('/v2/transcript/nope');
    expect([unknown.statusCode, await unknown.body.json()]).toEqual([
      400,
      { error: 'Transcript lookup error, transcript id not found' },
    ]);
  });
});
