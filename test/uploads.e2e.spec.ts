import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import sharp from 'sharp';
import { ReconcilerProcessor } from '../src/processing/reconciler.processor';
import { TestApp } from './support/test-app';

// Collections on demand, without starting Jest with --expose-gc.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;

const UPLOADS = '/api/v1/media/uploads';
const MIB = 1024 * 1024;

/** POST one file part as multipart/form-data (the part's name and type are the client's word, never trusted). */
async function upload(
  t: TestApp,
  bytes: Buffer,
  opts: { filename?: string; type?: string; as?: string } = {},
): Promise<{ status: number; body: any }> {
  const form = new FormData();
  form.append('file', new Blob([bytes], { type: opts.type ?? 'application/octet-stream' }), opts.filename ?? 'file');
  const res = await fetch(`${t.baseUrl}${UPLOADS}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${t.token(opts.as ?? 'alice')}` },
    body: form,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** A WAV header and `seconds` of silence: sniffed as audio/wav, taken by the transcription emulator. */
function wav(seconds: number): Buffer {
  const data = 8000 * seconds;
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + data, 4);
  header.write('WAVEfmt ', 8, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(8000, 28);
  header.writeUInt16LE(1, 32);
  header.writeUInt16LE(8, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(data, 40);
  return Buffer.concat([header, Buffer.alloc(data, 0x80)]);
}

async function storedUploads(t: TestApp): Promise<string[]> {
  return readdir(join(t.config.storage.localDir, 'uploads')).catch(() => []);
}

describe('uploads', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ sandbox: true, env: { UPLOAD_MAX_BYTES: String(256 * MIB), UPLOAD_TTL: '3600' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('stores a PNG with the type sniffed from its bytes, its size and its SHA-256, for its owner only', async () => {
    const png = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#3366cc' } })
      .png()
      .toBuffer();
    const before = Date.now();
    const res = await upload(t, png, { filename: 'photo.jpg', type: 'image/jpeg' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      url: `upload:${res.body.id}`,
      content_type: 'image/png',
      size: png.length,
      sha256: sha256(png),
      filename: 'photo.jpg',
    });
    const expires = Date.parse(res.body.expires_at);
    expect(expires).toBeGreaterThanOrEqual(before + 3600_000 - 1000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 3600_000 + 1000);

    const mine = await t.request('GET', `${UPLOADS}/${res.body.id}`);
    expect([mine.status, mine.body.sha256]).toEqual([200, sha256(png)]);
    expect((await t.request('GET', `${UPLOADS}/${res.body.id}`, { as: 'bob' })).status).toBe(404);
  });

  it('sniffs a .png-named text file as text and refuses bytes of no known format with 415', async () => {
    const text = Buffer.from('just some notes, not an image\nsecond line\n');
    const named = await upload(t, text, { filename: 'notes.png', type: 'image/png' });
    expect([named.status, named.body.content_type]).toEqual([201, 'text/plain']);

    const srt = Buffer.from('1\n00:00:00,000 --> 00:00:01,500\nHello.\n');
    expect((await upload(t, srt, { filename: 'a.txt' })).body.content_type).toBe('application/x-subrip');
    expect((await upload(t, Buffer.from('WEBVTT\n\n00:01.000 --> 00:02.000\nHi\n'))).body.content_type).toBe(
      'text/vtt',
    );

    const before = await storedUploads(t);
    const junk = Buffer.from([0x00, 0x01, 0x02, 0x03, 0xfe, 0xff, 0x10, 0x20, 0x00, 0x99]);
    const refused = await upload(t, junk, { filename: 'image.png', type: 'image/png' });
    expect([refused.status, refused.body.code]).toEqual([415, 'unsupported_media_type']);
    expect(await storedUploads(t)).toEqual(before);
  });

  it('answers 415 to a request that is not multipart, and refuses multipart bodies on every other route', async () => {
    const json = await t.request('POST', UPLOADS, { body: { file: 'x' } });
    expect(json.status).toBe(415);
    const form = new FormData();
    form.append('text', 'hello');
    const elsewhere = await fetch(`${t.baseUrl}/api/v1/media/subtitles/generate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.token()}` },
      body: form,
    });
    expect(elsewhere.status).toBe(415);
  });

  it('transcribes an uploaded file end to end: the worker reads the upload from storage', async () => {
    const audio = wav(2);
    const up = await upload(t, audio, { filename: 'talk.wav' });
    expect([up.status, up.body.content_type]).toEqual([201, 'audio/wav']);
    const res = await t.request('POST', '/api/v1/media/audio/transcribe', {
      body: { audio_url: up.body.url, provider: 'openai-whisper', response_format: 'json' },
    });
    expect(res.status).toBe(202);
    const task = await t.waitForTask(res.body.id, (x) => x.status === 'completed' || x.status === 'failed');
    expect([task.status, task.error]).toEqual(['completed', null]);
    // The emulator says what it received: the upload's bytes, all of them.
    expect(task.output.text).toContain(`${audio.length} bytes of audio`);
  });

  it("answers 400 naming the field for another user's upload, an unknown one, and one that has expired", async () => {
    const bobs = await upload(t, wav(1), { as: 'bob' });
    const other = await t.request('POST', '/api/v1/media/audio/transcribe', { body: { audio_url: bobs.body.url } });
    expect(other.status).toBe(400);
    expect(other.body.errors).toEqual([
      { field: 'audio_url', message: `audio_url: ${bobs.body.url} is not an upload of yours` },
    ]);

    const unknown = await t.request('POST', '/api/v1/media/videos/addaudio', {
      body: { url_video: 'https://example.com/v.mp4', url_audio: 'upload:0b7d6a1e-8f43-4a4e-9d55-0f7c2a1e9b10' },
    });
    expect([unknown.status, unknown.body.errors.map((e: { field: string }) => e.field)]).toEqual([400, ['url_audio']]);

    const batch = await t.request('POST', '/api/v1/media/batch', {
      body: [
        { task_type: 'subtitle_generation', input_data: { text: 'fine' } },
        { task_type: 'img2vid', input_data: { images: [{ id: 'a', image_url: bobs.body.url, duracao: 1 }] } },
      ],
    });
    expect(batch.status).toBe(400);
    expect(batch.body.errors).toEqual([expect.objectContaining({ index: 1, field: 'input_data.images[0].image_url' })]);

    const mine = await upload(t, wav(1));
    await t.dataSource.query(`UPDATE uploads SET expires_at = now() - interval '1 minute' WHERE id = $1`, [
      mine.body.id,
    ]);
    const expired = await t.request('POST', '/api/v1/media/audio/transcribe', { body: { audio_url: mine.body.url } });
    expect(expired.status).toBe(400);
    expect(expired.body.errors[0]).toMatchObject({ field: 'audio_url', message: expect.stringContaining('expired') });
    expect((await t.request('GET', `${UPLOADS}/${mine.body.id}`)).status).toBe(404);
  });

  it('sweeps expired uploads from storage and the table on the reconciler pass', async () => {
    const up = await upload(t, wav(1));
    const file = `${up.body.id}.wav`;
    expect(await storedUploads(t)).toContain(file);
    await t.dataSource.query(`UPDATE uploads SET expires_at = now() - interval '1 second' WHERE id = $1`, [up.body.id]);
    const report = await t.app.get(ReconcilerProcessor).reconcile();
    expect(report.uploadsSwept).toBeGreaterThanOrEqual(1);
    expect(await storedUploads(t)).not.toContain(file);
    expect(await t.dataSource.query(`SELECT id FROM uploads WHERE id = $1`, [up.body.id])).toEqual([]);
  });

  it('deletes an upload of its owner on DELETE', async () => {
    const up = await upload(t, Buffer.from('short text\n'));
    expect((await t.request('DELETE', `${UPLOADS}/${up.body.id}`, { as: 'bob' })).status).toBe(404);
    expect((await t.request('DELETE', `${UPLOADS}/${up.body.id}`)).status).toBe(204);
    expect((await t.request('GET', `${UPLOADS}/${up.body.id}`)).status).toBe(404);
    expect(await storedUploads(t)).not.toContain(`${up.body.id}.txt`);
  });

  it('streams a 200 MB upload into storage with memory flat', async () => {
    const size = 200 * MIB;
    const chunk = Buffer.alloc(MIB);
    // An MP4 file type box first, so the bytes sniff as video/mp4; zeros after it.
    const head = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypisom\0\0\0\0isomiso2', 'latin1')]);
    const hash = createHash('sha256');
    const boundary = 'upload-boundary-7f3a';
    const preamble = Buffer.from(
      `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="big.mp4"\r\n` +
        'content-type: application/octet-stream\r\n\r\n',
    );
    const epilogue = Buffer.from(`\r\n--${boundary}--\r\n`);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(preamble);
        if (sent >= size) {
          controller.enqueue(epilogue);
          controller.close();
          return;
        }
        const part = sent === 0 ? Buffer.concat([head, chunk.subarray(head.length)]) : chunk;
        hash.update(part);
        sent += part.length;
        controller.enqueue(part);
      },
    });
    // Live memory, not the resident size: the pipes' spent buffers are garbage that V8 collects when it likes, and the
    // resident size keeps pages the allocator has not handed back yet. A young-generation collection (a few ms) before
    // each sample frees the spent chunks, which mostly die young; the chunks of a buffered upload live on, and count.
    // Chunks promoted before they died (a slow pipe on a busy machine) need a full collection: only then is one made.
    const used = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    const live = (): number => {
      collectGarbage({ type: 'minor' });
      if (used() - baseline < 16 * MIB) return used();
      collectGarbage();
      return used();
    };
    collectGarbage();
    const baseline = used();
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, live())), 100);
    try {
      const res = await fetch(`${t.baseUrl}${UPLOADS}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${t.token()}`,
          'content-type': `multipart/form-data; boundary=${boundary}`,
        },
        body,
        duplex: 'half',
      });
      const answer = (await res.json()) as Record<string, unknown>;
      expect([res.status, answer.content_type, answer.size, answer.sha256]).toEqual([
        201,
        'video/mp4',
        size,
        hash.digest('hex'),
      ]);
    } finally {
      clearInterval(sampler);
    }
    // A buffered upload would hold its 200 MB at once; streamed, only the pipes' few buffers are alive at a time.
    expect(peak - baseline).toBeLessThan(48 * MIB);
  }, 120_000);
});

describe('uploads over UPLOAD_MAX_BYTES', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ env: { UPLOAD_MAX_BYTES: String(64 * 1024) } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers 413 naming the limit and keeps nothing', async () => {
    const big = Buffer.alloc(200 * 1024, 'a');
    const res = await upload(t, big, { filename: 'big.txt' });
    expect([res.status, res.body.code]).toEqual([413, 'payload_too_large']);
    expect(res.body.message).toContain('UPLOAD_MAX_BYTES');
    expect(res.body.message).toContain(String(64 * 1024));
    expect(await storedUploads(t)).toEqual([]);
    expect(await t.dataSource.query(`SELECT count(*)::int AS n FROM uploads`)).toEqual([{ n: 0 }]);
    // Just under the limit is fine.
    expect((await upload(t, Buffer.alloc(60 * 1024, 'a'))).status).toBe(201);
  });
});
