import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_KNOBS, EmulatorKnobs, EmulatorStats, SANDBOX_API_KEY } from './emulator-knobs';
import { createRunpodEmulator, ffmpegRunpodWorker, RunpodEmulatorOptions, RunpodWorker } from './runpod.emulator';
import { knobsFromEnv, runpodExecutionFromEnv, startSandbox } from '../sandbox';

const AUTH = { authorization: `Bearer ${SANDBOX_API_KEY}` };

interface JobView {
  id: string;
  status: string;
  executionTime?: number;
  output?: { videos: { id: string; video_url: string; filename: string }[]; message?: string };
  error?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function emulator(options: Omit<Partial<RunpodEmulatorOptions>, 'knobs'> & { knobs?: Partial<EmulatorKnobs> } = {}) {
  const knobs: EmulatorKnobs = { ...DEFAULT_KNOBS, ...options.knobs };
  const stats = new EmulatorStats();
  const app = createRunpodEmulator({ endpointId: 'sandbox', ...options, knobs, stats });
  const run = async (input: Record<string, unknown>): Promise<string> => {
    const res = await app.inject({ method: 'POST', url: '/sandbox/run', headers: AUTH, payload: { input } });
    expect(res.statusCode).toBe(200);
    return res.json<{ id: string }>().id;
  };
  const status = async (id: string): Promise<JobView> =>
    (await app.inject({ method: 'GET', url: `/sandbox/status/${id}`, headers: AUTH })).json<JobView>();
  const cancel = async (id: string): Promise<JobView> =>
    (await app.inject({ method: 'POST', url: `/sandbox/cancel/${id}`, headers: AUTH })).json<JobView>();
  /** Polls until the job is final (or the deadline passes). */
  const settle = async (id: string, timeoutMs = 60_000): Promise<JobView> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const view = await status(id);
      if (!['IN_QUEUE', 'IN_PROGRESS'].includes(view.status) || Date.now() > deadline) return view;
      await sleep(50);
    }
  };
  return { app, knobs, stats, run, status, cancel, settle };
}

describe('RunPod emulator, simulated execution', () => {
  const images = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ id: `s${i}`, image_url: `https://example.com/${i}.png`, duracao: 1 }));

  it('finishes a job no sooner than clipMs per clip, on the poll that comes after', async () => {
    const e = emulator({ knobs: { asyncSteps: 0, clipMs: 40 } });
    try {
      const submitted = Date.now();
      const id = await e.run({ operation: 'img2vid', images: images(5) });
      expect((await e.status(id)).status).toBe('IN_PROGRESS');
      await sleep(120);
      const early = await e.status(id);
      // Judged by the clock after the answer, so a slow machine cannot make it fail.
      if (Date.now() - submitted < 200) expect(early.status).toBe('IN_PROGRESS');
      // Then it completes on a poll once its 200 ms ran (counted from its start, which a busy machine may delay).
      await sleep(Math.max(0, submitted + 230 - Date.now()));
      let done = await e.status(id);
      for (const deadline = Date.now() + 3000; done.status === 'IN_PROGRESS' && Date.now() < deadline;) {
        await sleep(20);
        done = await e.status(id);
      }
      expect(done.status).toBe('COMPLETED');
      expect(done.executionTime).toBeGreaterThanOrEqual(200);
      expect(done.output!.videos.map((v) => v.id)).toEqual(['s0', 's1', 's2', 's3', 's4']);
      // One clip for the other operations.
      const single = await e.run({ operation: 'addaudio', url_video: 'https://example.com/v.mp4' });
      await sleep(50);
      expect((await e.status(single)).status).toBe('COMPLETED');
    } finally {
      await e.app.close();
    }
  });

  it('counts jobs outstanding at the provider, queued or running, once per final state', async () => {
    const e = emulator({ workers: 1, knobs: { asyncSteps: 1000 } });
    try {
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push(await e.run({ operation: 'img2vid', images: images(1) }));
      expect([e.stats.outstanding, e.stats.maxOutstanding, e.stats.inFlight]).toEqual([3, 3, 1]);
      await e.cancel(ids[2]); // queued
      await e.cancel(ids[2]); // already final: not counted again
      expect([e.stats.outstanding, e.stats.maxOutstanding]).toEqual([2, 3]);
      e.knobs.asyncSteps = 0;
      expect((await e.status(ids[0])).status).toBe('COMPLETED');
      expect([e.stats.outstanding, e.stats.inFlight]).toEqual([1, 1]);
      e.knobs.failureRate = 1;
      const failing = await e.run({ operation: 'img2vid', images: images(1) });
      expect([e.stats.outstanding, e.stats.maxOutstanding]).toEqual([2, 3]);
      expect((await e.status(ids[1])).status).toBe('COMPLETED');
      expect((await e.status(failing)).status).toBe('FAILED');
      expect([e.stats.outstanding, e.stats.inFlight]).toEqual([0, 0]);
      e.stats.reset();
      expect([e.stats.outstanding, e.stats.maxOutstanding]).toEqual([0, 0]);
    } finally {
      await e.app.close();
    }
  });
});

describe('RunPod emulator, execution stopped by its policy', () => {
  it('ends a run past policy.executionTimeout TIMED_OUT, with no poll, and aborts it', async () => {
    let aborted = false;
    const forever: RunpodWorker = (_operation, _input, signal) =>
      new Promise((_resolve, reject) =>
        signal.addEventListener('abort', () => {
          aborted = true;
          reject(new Error('aborted'));
        }),
      );
    const e = emulator({ execution: 'ffmpeg', worker: forever, workers: 1 });
    try {
      const res = await e.app.inject({
        method: 'POST',
        url: '/sandbox/run',
        headers: AUTH,
        payload: { input: { operation: 'addaudio' }, policy: { executionTimeout: 5000 } },
      });
      const { id } = res.json<{ id: string }>();
      await sleep(5300);
      expect(aborted).toBe(true);
      expect([e.stats.inFlight, e.stats.outstanding]).toEqual([0, 0]);
      expect((await e.status(id)).status).toBe('TIMED_OUT');
    } finally {
      await e.app.close();
    }
  }, 15000);
});

describe('sandbox settings from the environment', () => {
  it('reads SANDBOX_CLIP_MS and SANDBOX_RUNPOD_EXECUTION', () => {
    expect(knobsFromEnv({ SANDBOX_CLIP_MS: '25' })).toEqual({ clipMs: 25 });
    expect(runpodExecutionFromEnv({ SANDBOX_RUNPOD_EXECUTION: 'simulated' })).toBe('simulated');
    expect(runpodExecutionFromEnv({ SANDBOX_RUNPOD_EXECUTION: '' })).toBeUndefined();
    expect(() => runpodExecutionFromEnv({ SANDBOX_RUNPOD_EXECUTION: 'gpu' })).toThrow(/ffmpeg or simulated/);
  });

  it('runs RunPod jobs with ffmpeg when the binaries run, and simulates them when they do not', async () => {
    const found = await startSandbox({ basePort: 0 });
    const missing = await startSandbox({
      basePort: 0,
      ffmpeg: { ffmpegPath: '/nonexistent/ffmpeg', ffprobePath: '/nonexistent/ffprobe' },
    });
    try {
      expect([found.runpodExecution, missing.runpodExecution]).toEqual(['ffmpeg', 'simulated']);
    } finally {
      await Promise.all([found.close(), missing.close()]);
    }
  });
});

describe('RunPod emulator, ffmpeg execution', () => {
  const dir = mkdtempSync(join(tmpdir(), 'runpod-emulator-spec-'));
  let server: Server;
  let base: string;
  const worker = ffmpegRunpodWorker({ ffmpegPath: 'ffmpeg', ffprobePath: 'ffprobe', allowPrivateAddresses: true });

  beforeAll(async () => {
    execFileSync(
      'ffmpeg',
      ['-hide_banner', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240', '-frames:v', '1', join(dir, 'frame.png')],
      { stdio: 'ignore' },
    );
    const png = readFileSync(join(dir, 'frame.png'));
    // An HLS playlist whose segment is a file on the worker's disk.
    execFileSync(
      'ffmpeg',
      [
        '-hide_banner',
        '-y',
        '-f',
        'lavfi',
        '-i',
        'color=c=red:size=320x240:duration=1',
        '-f',
        'mpegts',
        join(dir, 'x.ts'),
      ],
      { stdio: 'ignore' },
    );
    const playlist = `#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n${join(dir, 'x.ts')}\n#EXT-X-ENDLIST\n`;
    server = createServer((req, res) => {
      if (req.url === '/frame.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(png);
      if (req.url === '/video.mp4') return void res.writeHead(200, { 'content-type': 'video/mp4' }).end(playlist);
      if (req.url === '/subs.srt') return void res.writeHead(200).end('1\n00:00:00,000 --> 00:00:00,900\nHi\n');
      if (req.url === '/notes.txt') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('not it');
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const probe = (bytes: Buffer, name: string) => {
    const file = join(dir, name);
    writeFileSync(file, bytes);
    return JSON.parse(
      execFileSync('ffprobe', [
        '-v',
        'error',
        '-show_entries',
        'stream=codec_name:format=duration',
        '-of',
        'json',
        file,
      ]).toString(),
    ) as { streams: { codec_name: string }[]; format: { duration: string } };
  };

  const output = async (app: FastifyInstance, url: string) => {
    const res = await app.inject({ method: 'GET', url: new URL(url).pathname });
    expect([res.statusCode, res.headers['content-type']]).toEqual([200, 'video/mp4']);
    return res.rawPayload;
  };

  it('keeps clip bytes within its budget, dropping the oldest finished job’s first', async () => {
    const made: RunpodWorker = () =>
      Promise.resolve({ artifacts: [{ contentType: 'video/mp4', data: Buffer.alloc(600), filename: 'a.mp4' }] });
    const e = emulator({ execution: 'ffmpeg', worker: made, outputBudgetBytes: 1000 });
    try {
      const input = { operation: 'img2vid', images: [{ id: 'a', image_url: `${base}/frame.png`, duracao: 1 }] };
      const first = await e.settle(await e.run(input));
      const second = await e.settle(await e.run(input));
      expect([first.status, second.status]).toEqual(['COMPLETED', 'COMPLETED']);
      const get = async (view: JobView) =>
        (await e.app.inject({ method: 'GET', url: new URL(view.output!.videos[0].video_url).pathname })).statusCode;
      expect([await get(first), await get(second)]).toEqual([404, 200]);
    } finally {
      await e.app.close();
    }
  });

  it('runs img2vid with ffmpeg and serves each real clip, in input order', async () => {
    const e = emulator({ execution: 'ffmpeg', worker });
    try {
      const id = await e.run({
        operation: 'img2vid',
        images: [
          { id: 'x', image_url: `${base}/frame.png`, duracao: 1 },
          { id: 'y', image_url: `${base}/frame.png`, duracao: 0.6 },
        ],
      });
      expect((await e.status(id)).status).toBe('IN_PROGRESS');
      const done = await e.settle(id);
      expect(done.status).toBe('COMPLETED');
      expect(done.output!.videos.map((v) => [v.id, v.filename])).toEqual([
        ['x', 'x.mp4'],
        ['y', 'y.mp4'],
      ]);
      for (const [n, seconds] of [1, 0.6].entries()) {
        const probed = probe(await output(e.app, done.output!.videos[n].video_url), `clip-${n}.mp4`);
        expect(probed.streams[0].codec_name).toBe('h264');
        expect(Math.abs(Number(probed.format.duration) - seconds)).toBeLessThanOrEqual(0.1);
      }
      const missing = await e.app.inject({ method: 'GET', url: `/sandbox/outputs/${id}/2.mp4` });
      expect(missing.statusCode).toBe(404);
      expect([e.stats.inFlight, e.stats.outstanding]).toEqual([0, 0]);
    } finally {
      await e.app.close();
    }
  });

  it('fails a job whose image is not a picture with the worker’s input_invalid reason', async () => {
    const e = emulator({ execution: 'ffmpeg', worker });
    try {
      const id = await e.run({
        operation: 'img2vid',
        images: [{ id: 'x', image_url: `${base}/notes.txt`, duracao: 1 }],
      });
      const done = await e.settle(id);
      expect(done.status).toBe('FAILED');
      expect(done.error).toMatch(/^input_invalid: images\[0\] \(x\): not an image/);
      expect([e.stats.inFlight, e.stats.outstanding]).toEqual([0, 0]);
      const unknown = await e.run({ operation: 'upscale' });
      expect(await e.settle(unknown)).toMatchObject({ status: 'FAILED', error: 'unknown operation' });
    } finally {
      await e.app.close();
    }
  });

  it('fails a job whose video is a playlist (it would read the worker’s files) with input_invalid', async () => {
    const e = emulator({ execution: 'ffmpeg', worker });
    try {
      const id = await e.run({ operation: 'caption', url_video: `${base}/video.mp4`, url_srt: `${base}/subs.srt` });
      const done = await e.settle(id);
      expect(done.status).toBe('FAILED');
      expect(done.error).toMatch(/^input_invalid: url_video: a hls file is not accepted/);
      expect(done.output).toBeUndefined();
    } finally {
      await e.app.close();
    }
  });

  it('stops a running job on cancel and gives its worker to the next job', async () => {
    let aborted = false;
    const e = emulator({
      execution: 'ffmpeg',
      workers: 1,
      worker: (operation, input, signal) => {
        signal.addEventListener('abort', () => (aborted = true));
        return worker(operation, input, signal);
      },
    });
    try {
      // A minute of 720p video: far longer than the test.
      const long = await e.run({
        operation: 'img2vid',
        images: [{ id: 'l', image_url: `${base}/frame.png`, duracao: 60 }],
      });
      const next = await e.run({
        operation: 'img2vid',
        images: [{ id: 'n', image_url: `${base}/frame.png`, duracao: 0.5 }],
      });
      await sleep(300);
      expect([(await e.status(long)).status, (await e.status(next)).status]).toEqual(['IN_PROGRESS', 'IN_QUEUE']);
      expect((await e.cancel(long)).status).toBe('CANCELLED');
      expect(aborted).toBe(true);
      expect(e.stats.inFlight).toBe(1);
      expect((await e.status(next)).status).toBe('IN_PROGRESS');
      expect((await e.settle(next)).status).toBe('COMPLETED');
      expect((await e.status(long)).status).toBe('CANCELLED');
      expect([e.stats.inFlight, e.stats.outstanding, e.stats.maxOutstanding]).toEqual([0, 0, 2]);
    } finally {
      await e.app.close();
    }
  });
});
