import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestApp } from './support/test-app';

const IMG2VID = '/api/v1/media/videos/img2vid';

describe('img2vid on local ffmpeg', () => {
  let t: TestApp;
  let server: Server;
  let base: string;
  const dir = mkdtempSync(join(tmpdir(), 'img2vid-spec-'));

  beforeAll(async () => {
    // A real picture, made by ffmpeg's test source; a text file; nothing else.
    execFileSync(
      'ffmpeg',
      ['-hide_banner', '-y', '-f', 'lavfi', '-i', 'testsrc=size=640x480', '-frames:v', '1', join(dir, 'frame.png')],
      {
        stdio: 'ignore',
      },
    );
    const png = readFileSync(join(dir, 'frame.png'));
    // A 2-second video without sound, 3 seconds of sound, and subtitles for them.
    execFileSync(
      'ffmpeg',
      [
        '-hide_banner',
        '-y',
        '-f',
        'lavfi',
        '-i',
        'color=c=gray:size=320x240:duration=2',
        '-c:v',
        'libx264',
        '-pix_fmt',
        'yuv420p',
        join(dir, 'plain.mp4'),
      ],
      { stdio: 'ignore' },
    );
    execFileSync(
      'ffmpeg',
      [
        '-hide_banner',
        '-y',
        '-f',
        'lavfi',
        '-i',
        'sine=frequency=440:duration=3',
        '-c:a',
        'libmp3lame',
        join(dir, 'tone.mp3'),
      ],
      { stdio: 'ignore' },
    );
    // A file on the worker's disk that no input may reach: a red video, next to the tone above.
    execFileSync(
      'ffmpeg',
      [
        '-hide_banner',
        '-y',
        '-f',
        'lavfi',
        '-i',
        'color=c=red:size=320x240:duration=2',
        '-c:v',
        'libx264',
        '-pix_fmt',
        'yuv420p',
        '-f',
        'mpegts',
        join(dir, 'secret.ts'),
      ],
      { stdio: 'ignore' },
    );
    /** An HLS playlist whose one segment is a file at an absolute path on the worker. */
    const playlist = (file: string) =>
      `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\n${file}\n#EXT-X-ENDLIST\n`;
    const files: Record<string, [string, Buffer | string]> = {
      '/plain.mp4': ['video/mp4', readFileSync(join(dir, 'plain.mp4'))],
      '/tone.mp3': ['audio/mpeg', readFileSync(join(dir, 'tone.mp3'))],
      '/subs.srt': ['application/x-subrip', '1\n00:00:00,000 --> 00:00:01,900\nHello there, friend\n'],
      '/playlist.mp4': ['video/mp4', playlist(join(dir, 'secret.ts'))],
      '/playlist.mp3': ['audio/mpeg', playlist(join(dir, 'tone.mp3'))],
    };
    server = createServer((req, res) => {
      if (req.url === '/frame.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(png);
      if (req.url === '/notes.txt')
        return void res.writeHead(200, { 'content-type': 'text/plain' }).end('not a picture');
      const file = files[req.url ?? ''];
      if (file) return void res.writeHead(200, { 'content-type': file[0] }).end(file[1]);
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    t = await TestApp.start();
  });
  afterAll(async () => {
    await t.close();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const probe = (file: string) =>
    JSON.parse(
      execFileSync('ffprobe', [
        '-v',
        'error',
        '-show_entries',
        'stream=codec_name,width,height,pix_fmt:format=duration',
        '-of',
        'json',
        file,
      ]).toString(),
    ) as {
      streams: { codec_name: string; width: number; height: number; pix_fmt: string }[];
      format: { duration: string };
    };

  it('makes one H.264 clip per image, of exactly its duration, in input order', async () => {
    const res = await t.request('POST', IMG2VID, {
      body: {
        images: [
          { id: 'first', image_url: `${base}/frame.png`, duracao: 1 },
          { id: 'second', image_url: `${base}/frame.png`, duracao: 2.5 },
        ],
      },
    });
    expect(res.status).toBe(202);
    const task = await t.waitForTask(res.body.id, (x) => x.status === 'completed' || x.status === 'failed', 60000);
    expect(task).toMatchObject({ status: 'completed', provider: 'ffmpeg-local' });
    expect(task.output.clips).toEqual([
      { id: 'first', duration_s: 1 },
      { id: 'second', duration_s: 2.5 },
    ]);
    const files = task.output.files as { filename: string; url: string; content_type: string }[];
    expect(files.map((f) => f.filename)).toEqual(['first.mp4', 'second.mp4']);
    for (const [i, expected] of [1, 2.5].entries()) {
      const body = Buffer.from(await (await fetch(`${t.baseUrl}${files[i].url}`)).arrayBuffer());
      const file = join(dir, `out-${i}.mp4`);
      writeFileSync(file, body);
      const probed = probe(file);
      expect(Math.abs(Number(probed.format.duration) - expected)).toBeLessThanOrEqual(0.1);
      expect(probed.streams[0]).toMatchObject({ codec_name: 'h264', pix_fmt: 'yuv420p', width: 1280, height: 720 });
      expect(files[i].content_type).toBe('video/mp4');
    }
  });

  it('fails a task whose image is not a picture (input_invalid) or is missing (input_unreachable)', async () => {
    for (const [path, code] of [
      ['/notes.txt', 'input_invalid'],
      ['/missing.png', 'input_unreachable'],
    ]) {
      const res = await t.request('POST', IMG2VID, {
        body: { images: [{ id: 'x', image_url: `${base}${path}`, duracao: 1 }] },
      });
      expect(res.status).toBe(202);
      const task = await t.waitForTask(res.body.id, (x) => x.status === 'failed', 30000);
      expect(task.error.code).toBe(code);
    }
  });

  /** The stored output of a finished task, on disk for ffprobe and ffmpeg. */
  async function outputOf(id: string, name: string): Promise<string> {
    const task = await t.waitForTask(id, (x) => x.status === 'completed' || x.status === 'failed', 60000);
    expect(task).toMatchObject({ status: 'completed', provider: 'ffmpeg-local' });
    const file = join(dir, name);
    writeFileSync(file, Buffer.from(await (await fetch(`${t.baseUrl}${task.output.files[0].url}`)).arrayBuffer()));
    return file;
  }

  /** The raw pixels of the frame at `at` seconds. */
  const frameAt = (file: string, at: number) =>
    execFileSync('ffmpeg', [
      '-v',
      'error',
      '-ss',
      String(at),
      '-i',
      file,
      '-frames:v',
      '1',
      '-s',
      '320x240',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'gray',
      '-',
    ]);

  it('burns captions in, in each style, changing the pixels where the text is', async () => {
    const before = frameAt(join(dir, 'plain.mp4'), 0.5);
    for (const style of ['classic', 'segments', 'highlight']) {
      const res = await t.request('POST', '/api/v1/media/videos/caption', {
        body: { url_video: `${base}/plain.mp4`, url_srt: `${base}/subs.srt`, style, output_filename: `cap-${style}` },
      });
      expect(res.status).toBe(202);
      const out = await outputOf(res.body.id, `cap-${style}.mp4`);
      const after = frameAt(out, 0.5);
      let changed = 0;
      for (let i = 0; i < before.length; i++) if (Math.abs(before[i] - after[i]) > 40) changed++;
      expect(changed).toBeGreaterThan(200);
      expect(Math.abs(Number(probe(out).format.duration) - 2)).toBeLessThanOrEqual(0.1);
    }
  });

  it('adds an audio track, the shorter input deciding the length', async () => {
    const res = await t.request('POST', '/api/v1/media/videos/addaudio', {
      body: { url_video: `${base}/plain.mp4`, url_audio: `${base}/tone.mp3` },
    });
    const out = await outputOf(res.body.id, 'with-audio.mp4');
    const probed = JSON.parse(
      execFileSync('ffprobe', [
        '-v',
        'error',
        '-show_entries',
        'stream=codec_type,codec_name:format=duration',
        '-of',
        'json',
        out,
      ]).toString(),
    ) as { streams: { codec_type: string; codec_name: string }[]; format: { duration: string } };
    expect(probed.streams.map((s) => [s.codec_type, s.codec_name])).toEqual([
      ['video', 'h264'],
      ['audio', 'aac'],
    ]);
    expect(Math.abs(Number(probed.format.duration) - 2)).toBeLessThanOrEqual(0.15);
  });

  it('fails a caption whose SRT is not subtitles, or whose video is not a video (input_invalid)', async () => {
    for (const body of [
      { url_video: `${base}/plain.mp4`, url_srt: `${base}/notes.txt` },
      { url_video: `${base}/notes.txt`, url_srt: `${base}/subs.srt` },
    ]) {
      const res = await t.request('POST', '/api/v1/media/videos/caption', { body });
      const task = await t.waitForTask(res.body.id, (x) => x.status === 'failed', 30000);
      expect(task.error.code).toBe('input_invalid');
    }
  });

  it('refuses a playlist given as media (it would read files on the worker): input_invalid, nothing rendered', async () => {
    for (const [path, body] of [
      ['/api/v1/media/videos/caption', { url_video: `${base}/playlist.mp4`, url_srt: `${base}/subs.srt` }],
      ['/api/v1/media/videos/addaudio', { url_video: `${base}/playlist.mp4`, url_audio: `${base}/tone.mp3` }],
      ['/api/v1/media/videos/addaudio', { url_video: `${base}/plain.mp4`, url_audio: `${base}/playlist.mp3` }],
      [IMG2VID, { images: [{ id: 'x', image_url: `${base}/playlist.mp4`, duracao: 1 }] }],
    ] as const) {
      const res = await t.request('POST', path, { body });
      expect(res.status).toBe(202);
      const task = await t.waitForTask(res.body.id, (x) => x.status === 'completed' || x.status === 'failed', 30000);
      expect(task).toMatchObject({ status: 'failed', output: null, attempts: 1 });
      expect(task.error.code).toBe('input_invalid');
      expect(task.error.message).toMatch(/hls/);
    }
  });

  it('stores the clips under the folder `path` names', async () => {
    const res = await t.request('POST', IMG2VID, {
      body: { path: 'campaign/2026', images: [{ id: 'p1', image_url: `${base}/frame.png`, duracao: 0.5 }] },
    });
    const task = await t.waitForTask(res.body.id, (x) => x.status === 'completed' || x.status === 'failed', 30000);
    expect(task.output.files[0].key).toBe(`tasks/campaign/2026/${task.id}/p1.mp4`);
    expect((await fetch(`${t.baseUrl}${task.output.files[0].url}`)).status).toBe(200);
  });

  it('refuses a duracao of 0 or over 60 with 400', async () => {
    for (const duracao of [0, 61]) {
      const res = await t.request('POST', IMG2VID, {
        body: { images: [{ id: 'x', image_url: `${base}/frame.png`, duracao }] },
      });
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).toMatch(/duracao/);
    }
  });
});
