import { ctxFor, providerError } from '../../../../test/support/adapter-testing';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { AppConfig } from '../../../config/app-config';
import { TaskType } from '../../../tasks/task.enums';
import { ProviderErrorCode, ProviderOutput, StartOutcome } from '../../provider.port';
import {
  DEFAULT_KNOBS,
  EmulatorKnobs,
  EmulatorStats,
  SANDBOX_API_KEY,
} from '../../../../sandbox/emulators/emulator-knobs';
import { createOpenAiEmulator } from '../../../../sandbox/emulators/openai.emulator';
import { SubtitleEngineProvider, SubtitleInput } from '../subtitles/subtitle-engine.provider';
import { OpenAiSubtitlesAdapter } from './openai-subtitles.adapter';
import { ChatCompletion, CreateChatCompletionRequest, SubtitleTranslationRequest } from './openai.types';

const TEXT =
  'Welcome to the show. Today we talk about subtitles, and about how they are timed so that everyone can read ' +
  'them comfortably. Thank you for watching.';

const knobs: EmulatorKnobs = { ...DEFAULT_KNOBS };
const stats = new EmulatorStats();
let emulator: FastifyInstance;
let apiBase: string;
let adapter: OpenAiSubtitlesAdapter;
/** The built-in engine of a deployment where a translator is configured. */
const engine = new SubtitleEngineProvider(AppConfig.fromEnv({ OPENAI_API_KEY: SANDBOX_API_KEY }));

function configFor(extra: Record<string, string> = {}): AppConfig {
  return AppConfig.fromEnv({
    OPENAI_API_KEY: SANDBOX_API_KEY,
    OPENAI_BASE_URL: apiBase,
    PROVIDER_HTTP_TIMEOUT_MS: '2000',
    ...extra,
  });
}

function completed(outcome: StartOutcome): Extract<StartOutcome, { kind: 'completed' }> {
  if (outcome.kind !== 'completed') throw new Error(`expected completed, got ${outcome.kind}`);
  return outcome;
}

function data(output: ProviderOutput): Record<string, any> {
  return output.data as Record<string, any>;
}

/** The chat requests the emulator saw, oldest first. */
function chatBodies(): CreateChatCompletionRequest[] {
  return stats.lastBodies as CreateChatCompletionRequest[];
}

function askedOf(body: CreateChatCompletionRequest): SubtitleTranslationRequest {
  return JSON.parse(body.messages[1].content) as SubtitleTranslationRequest;
}

/** [start, end] of every cue of an SRT document, in ms. */
function srtTimes(srt: string): [number, number][] {
  const ms = (t: string) => {
    const [h, m, rest] = t.split(':');
    const [s, milli] = rest.split(',');
    return ((Number(h) * 60 + Number(m)) * 60 + Number(s)) * 1000 + Number(milli);
  };
  return [...srt.matchAll(/(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})/g)].map((m) => [ms(m[1]), ms(m[2])]);
}

async function fakeOpenAi(handler: (body: any, res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(JSON.parse(Buffer.concat(chunks).toString() || '{}'), res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1` };
}

function completion(content: string, extra: Partial<ChatCompletion['choices'][0]> = {}): ChatCompletion {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1,
    model: 'gpt-4.1-mini',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content, refusal: null },
        logprobs: null,
        finish_reason: 'stop',
        ...extra,
      },
    ],
    usage: { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 },
  };
}

beforeAll(async () => {
  emulator = createOpenAiEmulator({ knobs, stats });
  await emulator.listen({ port: 0, host: '127.0.0.1' });
  apiBase = `http://127.0.0.1:${(emulator.server.address() as AddressInfo).port}/v1`;
  adapter = new OpenAiSubtitlesAdapter(configFor());
});

afterAll(async () => {
  await emulator.close();
});

beforeEach(() => {
  Object.assign(knobs, DEFAULT_KNOBS);
  stats.reset();
});

const translate = (input: SubtitleInput, on = adapter) =>
  on.start(ctxFor({ type: TaskType.SubtitleGeneration, input }));

describe('OpenAiSubtitlesAdapter', () => {
  it('describes itself, is configured by the OpenAI key and prices by the model’s tokens', () => {
    expect(adapter.name).toBe('openai-subtitles');
    expect(adapter.taskTypes).toEqual([TaskType.SubtitleGeneration]);
    expect(adapter.qualityScore).toBe(0.8);
    expect(adapter.costModel).toBe('gpt-4.1-mini: $0.4 per 1M input tokens, $1.6 per 1M output tokens');
    expect(adapter.isConfigured()).toBe(true);
    expect(new OpenAiSubtitlesAdapter(AppConfig.fromEnv({})).isConfigured()).toBe(false);
    expect(new OpenAiSubtitlesAdapter(configFor({ OPENAI_SUBTITLE_MODEL: 'gpt-9' })).costModel).toBe(
      'gpt-9: by tokens (price not known here)',
    );
  });

  it('runs only when a translation is asked, exactly where the built-in engine refuses', () => {
    const cases: [SubtitleInput, boolean][] = [
      [{ text: TEXT, target_language: 'pt' }, true],
      [{ text: TEXT, target_language: 'pt', source_language: 'en' }, true],
      [{ text: TEXT, target_language: 'pt-BR', source_language: 'pt' }, false],
      [{ text: TEXT, target_language: 'en', source_language: 'en-GB' }, false],
      [{ text: TEXT, source_language: 'en' }, false],
      [{ text: TEXT }, false],
    ];
    for (const [input, translates] of cases) {
      const gpt = adapter.validate({ type: TaskType.SubtitleGeneration, input });
      const own = engine.validate({ type: TaskType.SubtitleGeneration, input });
      expect([input, gpt.length === 0, own.length === 0]).toEqual([input, translates, !translates]);
    }
    expect(
      engine.validate({ type: TaskType.SubtitleGeneration, input: { text: TEXT, target_language: 'pt' } }),
    ).toEqual([
      {
        field: 'target_language',
        message:
          'target_language: subtitle-engine does not translate; to label the text without translating it, send source_language equal to target_language',
      },
    ]);
    expect(adapter.validate({ type: TaskType.SubtitleGeneration, input: { text: TEXT } })).toEqual([
      { field: 'target_language', message: expect.stringMatching(/^target_language: /) },
    ]);
    // With no translator configured, target_language alone is the label it always was; a named other language is not.
    const alone = new SubtitleEngineProvider(AppConfig.fromEnv({}));
    expect(alone.validate({ type: TaskType.SubtitleGeneration, input: { text: TEXT, target_language: 'pt' } })).toEqual(
      [],
    );
    expect(
      alone.validate({
        type: TaskType.SubtitleGeneration,
        input: { text: TEXT, target_language: 'pt', source_language: 'en' },
      }),
    ).toEqual([{ field: 'target_language', message: 'target_language: subtitle-engine does not translate (en → pt)' }]);
  });

  it('sends the engine’s cues as a numbered JSON list with a strict schema, and keeps their times', async () => {
    const done = completed(await translate({ text: TEXT, target_language: 'pt', format: 'srt' }));
    const own = completed(
      await engine.start(ctxFor({ type: TaskType.SubtitleGeneration, input: { text: TEXT, format: 'srt' } })),
    );

    expect(stats.requests.get('POST /v1/chat/completions')).toBe(1);
    const [body] = chatBodies();
    expect(body.model).toBe('gpt-4.1-mini');
    expect(body.messages.map((m) => m.role)).toEqual(['system', 'user']);
    expect(body.response_format).toMatchObject({
      type: 'json_schema',
      json_schema: { name: 'subtitle_translation', strict: true },
    });
    expect(Object.keys(body).sort()).toEqual(['messages', 'model', 'response_format']);
    // One numbered entry per cue the engine made, in order, with the cue's text.
    const ownContent = String(data(own.output).content);
    const asked = askedOf(body);
    expect(asked.target_language).toBe('pt');
    expect(asked.source_language).toBeNull();
    expect(asked.cues.map((c) => c.id)).toEqual(srtTimes(ownContent).map((_, i) => i + 1));
    expect(asked.cues[0].text).toBe('Welcome to the show.');

    const content = String(data(done.output).content);
    expect(content).toContain('[pt] Welcome to the show.');
    expect(content).not.toMatch(/\n(?!\[pt\])[A-Z][^\n]*\n\n/); // every cue's first line is translated
    // Timing stays: every cue of the engine's layout starts at the same moment, and the last one ends as before.
    const before = srtTimes(ownContent);
    const after = srtTimes(content);
    expect(after.map(([start]) => start)).toEqual(expect.arrayContaining(before.map(([start]) => start)));
    expect(after[after.length - 1][1]).toBe(before[before.length - 1][1]);

    expect(data(done.output)).toMatchObject({
      format: 'srt',
      language: 'pt',
      source_language: 'en',
      translated: true,
      translation: { model: 'gpt-4.1-mini', calls: 1 },
    });
    expect(done.output.artifacts).toEqual([
      { contentType: 'application/x-subrip', data: Buffer.from(content), filename: 'subtitles.srt' },
    ]);
    // Cost from the answer's token usage at gpt-4.1-mini's price.
    const { prompt_tokens, completion_tokens } = data(done.output).translation as Record<string, number>;
    expect(prompt_tokens).toBeGreaterThan(0);
    expect(done.cost).toEqual({
      amount: Math.round(((prompt_tokens * 0.4 + completion_tokens * 1.6) / 1e6) * 1e6) / 1e6,
      currency: 'USD',
    });
    expect(
      adapter.estimateCost({ type: TaskType.SubtitleGeneration, input: { text: TEXT, target_language: 'pt' } }).amount,
    ).toBeGreaterThan(0);
  });

  it('translates manual segments in place: each keeps its exact start and end', async () => {
    const done = completed(
      await translate({
        timing_mode: 'manual',
        target_language: 'pt',
        source_language: 'en',
        format: 'vtt',
        segments: [
          { start: 0.5, end: 1.75, text: 'Hello there.' },
          { start: 2, end: 3.25, text: 'General Kenobi.' },
        ],
      }),
    );
    expect(askedOf(chatBodies()[0])).toEqual({
      target_language: 'pt',
      source_language: 'en',
      cues: [
        { id: 1, text: 'Hello there.' },
        { id: 2, text: 'General Kenobi.' },
      ],
    });
    const content = String(data(done.output).content);
    expect(content).toContain('Language: pt');
    expect(content).toContain('00:00:00.500 --> 00:00:01.750\n[pt] Hello there.');
    expect(content).toContain('00:00:02.000 --> 00:00:03.250\n[pt] General Kenobi.');
  });

  it('answers a text already in the target language unchanged (the model tells its language)', async () => {
    const done = completed(await translate({ text: 'Olá, você está bem? Eu estou com fome.', target_language: 'pt' }));
    expect(data(done.output)).toMatchObject({ source_language: 'pt', translated: false });
    expect(String(data(done.output).content)).not.toContain('[pt]');
  });

  it('translates a long text in calls of at most 60 cues, numbered across them, reporting progress', async () => {
    const text = Array.from({ length: 130 }, (_, i) => `Sentence number ${i + 1} is here.`).join(' ');
    const ctx = ctxFor({ type: TaskType.SubtitleGeneration, input: { text, target_language: 'es' } });
    const done = completed(await adapter.start(ctx));
    const calls = chatBodies().map(askedOf);
    expect(calls.map((c) => c.cues.length)).toEqual([60, 60, 10]);
    expect(calls.flatMap((c) => c.cues.map((cue) => cue.id))).toEqual(Array.from({ length: 130 }, (_, i) => i + 1));
    expect(data(done.output).translation).toMatchObject({ calls: 3 });
    expect(String(data(done.output).content)).toContain('[es] Sentence number 130 is here.');
    expect(ctx.reportProgress).toHaveBeenLastCalledWith(0.9);
  });

  it('refuses before calling OpenAI what it cannot do: no translation asked, or bad segments', async () => {
    const same = await providerError(translate({ text: TEXT, target_language: 'en', source_language: 'en' }));
    expect(same).toMatchObject({ code: ProviderErrorCode.InputInvalid, retryable: false });
    const overlapping = await providerError(
      translate({
        timing_mode: 'manual',
        target_language: 'pt',
        segments: [
          { start: 0, end: 2, text: 'One.' },
          { start: 1, end: 3, text: 'Two.' },
        ],
      }),
    );
    expect(overlapping).toMatchObject({ code: 'invalid_input', retryable: false });
    expect(overlapping.message).toBe('Segment 2 overlaps the previous segment');
    expect(stats.requests.size).toBe(0);
  });

  it('fails with a clear, retryable provider error when the model answers another number of cues', async () => {
    const fake = await fakeOpenAi((body: CreateChatCompletionRequest, res) => {
      const asked = JSON.parse(body.messages[1].content) as SubtitleTranslationRequest;
      const answer = {
        source_language: 'en',
        cues: asked.cues.slice(1).map((c) => ({ id: c.id, text: `x ${c.text}` })),
      };
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify(completion(JSON.stringify(answer))));
    });
    try {
      const broken = new OpenAiSubtitlesAdapter(configFor({ OPENAI_BASE_URL: fake.url }));
      const err = await providerError(translate({ text: TEXT, target_language: 'pt' }, broken));
      expect(err).toMatchObject({ code: ProviderErrorCode.BadResponse, retryable: true });
      expect(err.message).toBe('openai-subtitles answered 3 cues for the 4 it was sent (ids 1–4)');
    } finally {
      fake.server.close();
    }
  });

  it('treats a non-JSON answer, a cut-short answer and a refusal as the model’s failures', async () => {
    const answers = [
      completion('Sure! Here is your translation.'),
      completion('{"source_language":"en","cues":[', { finish_reason: 'length' }),
    ];
    const fake = await fakeOpenAi((_body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answers.shift()));
    });
    try {
      const broken = new OpenAiSubtitlesAdapter(configFor({ OPENAI_BASE_URL: fake.url }));
      const notJson = await providerError(translate({ text: 'Hi.', target_language: 'pt' }, broken));
      expect([notJson.code, notJson.retryable, notJson.message]).toEqual([
        ProviderErrorCode.BadResponse,
        true,
        'openai-subtitles answered a translation that is not JSON',
      ]);
      const cut = await providerError(translate({ text: 'Hi.', target_language: 'pt' }, broken));
      expect(cut.message).toContain('cut short');
    } finally {
      fake.server.close();
    }
    // The emulated model refuses a cue with "forbidden" in it: final, as content policy.
    const refused = await providerError(translate({ text: 'This is forbidden talk.', target_language: 'pt' }));
    expect(refused).toMatchObject({ code: ProviderErrorCode.ContentPolicy, retryable: false });
    expect(refused.message).toContain('the model refused');
  });

  it('reports no cost for a model whose price it does not know', async () => {
    const other = new OpenAiSubtitlesAdapter(configFor({ OPENAI_SUBTITLE_MODEL: 'gpt-5.5' }));
    const done = completed(await translate({ text: 'Hello there.', target_language: 'pt' }, other));
    expect(done.cost).toBeUndefined();
    expect(chatBodies()[0].model).toBe('gpt-5.5');
  });

  describe('error answers, classified like the other OpenAI adapters', () => {
    it('401 → permanent provider_auth_failed, without the key in the message', async () => {
      const wrongKey = 'sk-wrong-0123456789abcdefghij';
      const wrong = new OpenAiSubtitlesAdapter(configFor({ OPENAI_API_KEY: wrongKey }));
      const err = await providerError(translate({ text: TEXT, target_language: 'pt' }, wrong));
      expect(err).toMatchObject({ code: ProviderErrorCode.AuthFailed, retryable: false, status: 401 });
      expect(err.message).toContain('Incorrect API key provided');
      expect(err.message).not.toContain(wrongKey);
    });

    it('429 → transient rate_limited after its Retry-After', async () => {
      knobs.rateLimitRate = 1;
      const err = await providerError(translate({ text: TEXT, target_language: 'pt' }));
      expect(err).toMatchObject({
        code: ProviderErrorCode.RateLimited,
        retryable: true,
        retryAfterMs: 1000,
        status: 429,
      });
    });

    it('500 → transient provider_unavailable', async () => {
      knobs.failureRate = 1;
      const err = await providerError(translate({ text: TEXT, target_language: 'pt' }));
      expect(err).toMatchObject({ code: ProviderErrorCode.Unavailable, retryable: true, status: 500 });
    });

    it('400 → permanent invalid_request with OpenAI’s message; an unknown model → permanent not found', async () => {
      const fake = await fakeOpenAi((_body, res) => {
        res.writeHead(400, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            error: {
              message: "Invalid 'messages[1].content': string too long.",
              type: 'invalid_request_error',
              param: 'messages[1].content',
              code: 'string_above_max_length',
            },
          }),
        );
      });
      try {
        const broken = new OpenAiSubtitlesAdapter(configFor({ OPENAI_BASE_URL: fake.url }));
        const err = await providerError(translate({ text: TEXT, target_language: 'pt' }, broken));
        expect(err).toMatchObject({ code: ProviderErrorCode.InvalidRequest, retryable: false, status: 400 });
        expect(err.message).toBe("openai-subtitles answered 400: Invalid 'messages[1].content': string too long.");
      } finally {
        fake.server.close();
      }
      const unknown = new OpenAiSubtitlesAdapter(configFor({ OPENAI_SUBTITLE_MODEL: 'davinci-002' }));
      const err = await providerError(translate({ text: TEXT, target_language: 'pt' }, unknown));
      expect(err).toMatchObject({ code: ProviderErrorCode.NotFound, retryable: false, status: 404 });
      expect(err.message).toContain('does not exist');
    });
  });
});

describe('OpenAI emulator: chat completions', () => {
  const post = (body: unknown) =>
    request(`${apiBase}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SANDBOX_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('answers a plain chat in the ChatCompletion shape, with usage', async () => {
    const res = await post({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'Hi' }] });
    expect(res.statusCode).toBe(200);
    const body = (await res.body.json()) as ChatCompletion;
    expect(body).toMatchObject({
      object: 'chat.completion',
      model: 'gpt-4.1-mini',
      choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', refusal: null } }],
      usage: { prompt_tokens: 1, total_tokens: expect.any(Number) },
    });
    expect(body.id).toMatch(/^chatcmpl-/);
  });

  it('refuses what OpenAI refuses: a loose strict schema, json_object without "json", an unknown field', async () => {
    const loose = await post({
      model: 'gpt-4.1-mini',
      messages: [{ role: 'user', content: 'Hi' }],
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'x', strict: true, schema: { type: 'object', properties: { a: { type: 'string' } } } },
      },
    });
    expect(loose.statusCode).toBe(400);
    expect(((await loose.body.json()) as any).error).toMatchObject({
      code: 'invalid_json_schema',
      message: expect.stringContaining("'additionalProperties' is required to be supplied and to be false"),
    });
    const jsonObject = await post({
      model: 'gpt-4.1-mini',
      messages: [{ role: 'user', content: 'Hi' }],
      response_format: { type: 'json_object' },
    });
    expect(jsonObject.statusCode).toBe(400);
    expect(((await jsonObject.body.json()) as any).error.param).toBe('messages');
    const unknown = await post({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'Hi' }], colour: 'red' });
    expect(((await unknown.body.json()) as any).error.message).toBe('Unrecognized request argument supplied: colour');
    const temperature = await post({
      model: 'gpt-5-mini',
      messages: [{ role: 'user', content: 'Hi' }],
      temperature: 0,
    });
    expect(((await temperature.body.json()) as any).error.code).toBe('unsupported_value');
  });
});
