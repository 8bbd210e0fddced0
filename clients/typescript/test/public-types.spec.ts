import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { QueueStats, Task, TaskEvent, TaskInput, TaskListQuery, TaskPage, TaskResult } from '../src';
import { parseFields } from '../src/cli';

/** True only for `any` (checked by `npm run check`, which type-checks this file). */
type IsAny<T> = 0 extends 1 & T ? true : false;
type NoAny<T> = IsAny<T> extends true ? never : true;

const checks: [
  NoAny<Task>,
  NoAny<TaskPage>,
  NoAny<TaskResult>,
  NoAny<TaskListQuery>,
  NoAny<TaskEvent>,
  NoAny<QueueStats>,
  NoAny<Task['status']>,
  NoAny<Task['output']>,
  NoAny<TaskInput<'image'>['prompt']>,
  NoAny<TaskInput<'video'>>,
] = [true, true, true, true, true, true, true, true, true, true];

/** The declarations the build writes (dist/, made by `npm run build`, which npm test runs first). */
const DIST = join(__dirname, '..', 'dist');

describe('the public types of the client', () => {
  it('declare no `any`, the generated ones included', async () => {
    expect(checks.every(Boolean)).toBe(true);
    const files = (await readdir(DIST, { recursive: true })).filter((f) => f.endsWith('.d.ts'));
    expect(files).toEqual(expect.arrayContaining(['index.d.ts', 'client.d.ts', join('generated', 'openapi.d.ts')]));
    for (const file of files) {
      const code = (await readFile(join(DIST, file), 'utf8')).replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      expect([file, code.match(/\bany\b/g) ?? []]).toEqual([file, []]);
    }
  });
});

describe('the command line reads task fields', () => {
  it('as --name value and --name=value, kebab-case to snake_case, JSON where the value reads as JSON', () => {
    expect(
      parseFields([
        '--prompt',
        'a fox, 2 tails',
        '--image-url=https://example.com/a.png',
        '--n',
        '2',
        '--hd',
        '--webhook-events',
        '["task.completed"]',
        '--metadata={"order": 7}',
        '--text',
        '-1 degree',
      ]),
    ).toEqual({
      prompt: 'a fox, 2 tails',
      image_url: 'https://example.com/a.png',
      n: 2,
      hd: true,
      webhook_events: ['task.completed'],
      metadata: { order: 7 },
      text: '-1 degree',
    });
    expect(() => parseFields(['loose'])).toThrow(/unexpected argument loose/);
  });
});
