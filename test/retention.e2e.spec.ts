import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ReconcilerProcessor } from '../src/processing/reconciler.processor';
import { TaskType } from '../src/tasks/task.enums';
import { ScriptedProvider } from './support/scripted-provider';
import { TestApp } from './support/test-app';

const IMAGES = '/api/v1/media/images/generate';
const UPLOADS = '/api/v1/media/uploads';
const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001', 'hex');

/** The counter's value in a /metrics text (0 when absent). */
function counter(metrics: string, name: string, kind: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{kind="${kind}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** Stores a task's output (one PNG, `bytes` long) and answers the task as the API shows it. */
async function completedTask(t: TestApp, prompt: string): Promise<any> {
  const res = await t.request('POST', IMAGES, { body: { prompt } });
  expect(res.status).toBe(202);
  return t.waitForTask(res.body.id as string, (task) => task.status === 'completed');
}

async function uploadFile(t: TestApp): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([Buffer.from('retention test subtitles\n')]), 'notes.txt');
  const res = await fetch(`${t.baseUrl}${UPLOADS}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${t.token('alice')}` },
    body: form,
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

describe('output retention (OUTPUT_RETENTION_DAYS)', () => {
  const provider = new ScriptedProvider('painter', [TaskType.ImageGeneration], [{ delayMs: 0 }], {
    artifacts: [{ contentType: 'image/png', data: PNG, filename: 'fox.png' }],
  });

  describe('set to 7 days', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await TestApp.start({ env: { OUTPUT_RETENTION_DAYS: '7' }, providers: [provider] });
    });
    afterAll(() => t.close());

    it('deletes the files of tasks past it, marks them expired, answers 410 on their links and counts what it freed', async () => {
      const old = await completedTask(t, 'an old fox');
      const recent = await completedTask(t, 'a recent fox');
      const oldUpload = await uploadFile(t);
      const newUpload = await uploadFile(t);
      await t.dataSource.query(`UPDATE tasks SET completed_at = now() - interval '8 days' WHERE id = $1`, [old.id]);
      await t.dataSource.query(`UPDATE tasks SET completed_at = now() - interval '6 days' WHERE id = $1`, [recent.id]);
      await t.dataSource.query(`UPDATE uploads SET created_at = now() - interval '8 days' WHERE id = $1`, [oldUpload]);
      const root = t.config.storage.localDir;
      const oldFile = join(root, old.output.files[0].key);
      expect(await exists(oldFile)).toBe(true);
      expect((await fetch(`${t.baseUrl}${old.output.files[0].url}`)).status).toBe(200);
      const before = (await t.request('GET', '/metrics', { token: null })).body as string;

      const report = await t.app.get(ReconcilerProcessor).reconcile();
      expect(report.retentionFilesDeleted).toBe(2); // the old task's PNG and the old upload

      expect(await exists(oldFile)).toBe(false);
      const swept = (await t.request('GET', `/api/v1/media/tasks/${old.id}`)).body;
      expect(swept.output.expired_at).toEqual(expect.stringMatching(/^\d{4}-\d\d-\d\dT/));
      expect(Date.now() - Date.parse(swept.output.expired_at)).toBeLessThan(60_000);
      // The rest of the output stays: names, sizes and hashes of what was there.
      expect(swept.output.files[0]).toMatchObject({ key: old.output.files[0].key, sha256: old.output.files[0].sha256 });
      const gone = await fetch(`${t.baseUrl}${swept.output.files[0].url}`);
      expect(gone.status).toBe(410);
      expect(await gone.json()).toMatchObject({ code: 'gone', message: 'file expired or deleted' });

      const kept = (await t.request('GET', `/api/v1/media/tasks/${recent.id}`)).body;
      expect(kept.output.expired_at).toBeUndefined();
      expect(await exists(join(root, recent.output.files[0].key))).toBe(true);
      expect((await fetch(`${t.baseUrl}${kept.output.files[0].url}`)).status).toBe(200);

      expect((await t.request('GET', `${UPLOADS}/${oldUpload}`)).status).toBe(404);
      expect((await t.request('GET', `${UPLOADS}/${newUpload}`)).status).toBe(200);

      const after = (await t.request('GET', '/metrics', { token: null })).body as string;
      const files = 'media_retention_deleted_files_total';
      const bytes = 'media_retention_deleted_bytes_total';
      expect(counter(after, files, 'task_output') - counter(before, files, 'task_output')).toBe(1);
      expect(counter(after, bytes, 'task_output') - counter(before, bytes, 'task_output')).toBe(PNG.length);
      expect(counter(after, files, 'upload') - counter(before, files, 'upload')).toBe(1);
      expect(counter(after, bytes, 'upload') - counter(before, bytes, 'upload')).toBe(25);

      // Swept once: the next pass finds nothing more to delete.
      expect((await t.app.get(ReconcilerProcessor).reconcile()).retentionFilesDeleted).toBe(0);
    });
  });

  describe('left at 0', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await TestApp.start({ providers: [provider] });
    });
    afterAll(() => t.close());

    it('keeps every output, however old', async () => {
      const task = await completedTask(t, 'an ancient fox');
      const upload = await uploadFile(t);
      await t.dataSource.query(`UPDATE tasks SET completed_at = now() - interval '3650 days' WHERE id = $1`, [task.id]);
      await t.dataSource.query(`UPDATE uploads SET created_at = now() - interval '1 day' WHERE id = $1`, [upload]);
      expect((await t.app.get(ReconcilerProcessor).reconcile()).retentionFilesDeleted).toBe(0);
      const read = (await t.request('GET', `/api/v1/media/tasks/${task.id}`)).body;
      expect(read.output.expired_at).toBeUndefined();
      expect((await fetch(`${t.baseUrl}${read.output.files[0].url}`)).status).toBe(200);
      expect((await t.request('GET', `${UPLOADS}/${upload}`)).status).toBe(200);
    });
  });
});
