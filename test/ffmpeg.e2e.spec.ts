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
    server = createServer((req, res) => {
      if (req.url === '/frame.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(png);
      if (req.url === '/notes.txt')
        return void res.writeHead(200, { 'content-type': 'text/plain' }).end('not a picture');
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
