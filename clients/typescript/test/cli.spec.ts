import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestApp } from '../../../test/support/test-app';

/** The command line as `npx media-tasks` runs it (the built client: npm test builds it first). */
const BIN = join(__dirname, '..', 'bin', 'media-tasks.js');
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

describe('the media-tasks command line against a sandbox platform', () => {
  let t: TestApp;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'media-tasks-cli-'));
    t = await TestApp.start({ sandbox: true });
  });
  afterAll(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  function cli(args: string[], user = 'cli-user', admin = false): Promise<Ran> {
    const env = { ...process.env, MEDIA_TASKS_URL: t.baseUrl, MEDIA_TASKS_TOKEN: t.token(user, { admin }) };
    return new Promise((resolve) => {
      execFile(process.execPath, [BIN, ...args], { env, timeout: 20000 }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  it('submits an image task and waits for it in one command: exit 0 with the completed task as JSON', async () => {
    const ran = await cli([
      'submit',
      'image',
      '--prompt',
      'a lighthouse at dawn',
      '--quality',
      'hd',
      '--wait',
      '--json',
    ]);
    expect([ran.code, ran.stderr]).toEqual([0, '']);
    const task = JSON.parse(ran.stdout);
    expect(task).toMatchObject({ type: 'image_generation', status: 'completed', input: { quality: 'hd' } });

    const listed = await cli(['ls', '--json']);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout).map((x: { id: string }) => x.id)).toContain(task.id);

    const table = await cli(['ls']);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+TYPE\s+STATUS\s+PROGRESS\s+PROVIDER\s+CREATED$/);
    expect(table.stdout).toMatch(new RegExp(`${task.id}\\s+image_generation\\s+completed\\s+100%`));

    const downloaded = await cli(['download', task.id, join(dir, 'out'), '--json']);
    expect(downloaded.code).toBe(0);
    const [file] = JSON.parse(downloaded.stdout).files as string[];
    expect((await readFile(file)).subarray(0, 8)).toEqual(PNG_SIGNATURE);
  });

  it('shows the state changes as they happen, and reads the input from a file', async () => {
    const input = join(dir, 'input.json');
    await writeFile(
      input,
      JSON.stringify({ prompt: 'from a file', run_at: new Date(Date.now() + 1000).toISOString() }),
    );
    const ran = await cli(['submit', 'image', '--file', input, '--size', '1024x1024', '--wait']);
    expect(ran.code).toBe(0);
    const lines = ran.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^[0-9a-f-]{36}\s+image_generation\s+queued$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(1, 3).join(' '))).toEqual([
      'task.started processing',
      'task.completed completed',
    ]);
    expect(ran.stdout).toMatch(/image_generation\s+completed/);
    expect(ran.stdout).toMatch(/file: image-1\.png image\/png /);
  });

  it('exits 2 naming the field for a bad one, and for a wrong command line', async () => {
    const bad = await cli(['submit', 'image', '--prompt', 'x', '--n', '99', '--bogus', 'yes']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^ {2}n: /m);
    expect(bad.stderr).toMatch(/^ {2}bogus: /m);
    expect((await cli(['submit', 'sculpture', '--prompt', 'x'])).code).toBe(2);
    expect((await cli(['submit'])).code).toBe(2);
    expect((await cli(['frobnicate'])).code).toBe(2);
    expect((await cli(['ls', '--limit', '0'])).code).toBe(2);
  });

  it('exits 1 when the task fails, and 3 when waiting times out', async () => {
    // The emulator refuses such a prompt as OpenAI does (content policy): the task fails for good at once.
    const failed = await cli([
      'submit',
      'image',
      '--prompt',
      'a forbidden fox',
      '--provider',
      'openai-images',
      '--wait',
    ]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/image_generation\s+failed/);
    expect(failed.stdout).toMatch(/^error: \w+: /m);

    const later = new Date(Date.now() + 60_000).toISOString();
    const waited = await cli(['submit', 'image', '--prompt', 'later', '--run-at', later, '--wait', '--timeout', '0.5']);
    expect(waited.code).toBe(3);
    expect(waited.stderr).toMatch(/did not finish within 500 ms/);
    const id = /^([0-9a-f-]{36})/.exec(waited.stderr)![1];
    const cancelled = await cli(['cancel', id, '--json']);
    expect([cancelled.code, JSON.parse(cancelled.stdout).status]).toEqual([0, 'cancelled']);
    const watched = await cli(['watch', id, '--json']);
    expect(watched.code).toBe(1);
    expect(JSON.parse(watched.stdout)).toMatchObject({ event_type: 'task.cancelled', task_id: id });
    expect((await cli(['get', id], 'someone-else')).code).toBe(1);
  });

  it('shows statistics, and the queues to an admin', async () => {
    const stats = await cli(['stats', '--json']);
    expect(stats.code).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({
      scope: 'own',
      provider_health: { 'openai-images': expect.any(Object) },
    });

    const queues = await cli(['queues'], 'ops');
    expect(queues.code).toBe(1);
    expect(queues.stderr).toMatch(/^media-tasks: 403 forbidden: /);
    const admin = await cli(['queues'], 'ops', true);
    expect(admin.code).toBe(0);
    expect(admin.stdout.split('\n')[0]).toMatch(
      /^QUEUE\s+WAITING\s+PRIORITIZED\s+ACTIVE\s+DELAYED\s+COMPLETED\s+FAILED$/,
    );
    expect(admin.stdout).toMatch(/^tasks\s+\d+/m);
  });
});
