import { MultiBar, Presets } from 'cli-progress';
import { Command, CommanderError } from 'commander';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { MediaTasks } from './client';
import { ApiError, MediaTasksError, TimeoutError, ValidationError } from './errors';
import {
  CREATE_PATHS,
  isTerminalEvent,
  TASK_TYPE_ALIASES,
  taskTypeOf,
  type Task,
  type TaskEvent,
  type TaskListQuery,
} from './types';

/** Exit codes: what happened, for scripts. */
export const EXIT = { completed: 0, failed: 1, usage: 2, timeout: 3 } as const;

const DEFAULT_URL = 'http://localhost:3000';

/** A wrong command line: exit 2 with the message. */
class UsageError extends Error {}

interface GlobalOptions {
  url: string;
  token?: string;
  apiKey?: string;
  json: boolean;
}

/** What a command answers: the exit code (output is already written). */
type Run = Promise<number>;

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

function err(text: string): void {
  process.stderr.write(`${text}\n`);
}

function client(options: GlobalOptions, onRetry = true): MediaTasks {
  return new MediaTasks({
    baseUrl: options.url,
    token: options.token,
    apiKey: options.apiKey,
    events: 'fetch',
    retry: {
      onRetry: onRetry
        ? (info) =>
            err(`HTTP ${info.status}: retrying in ${Math.ceil(info.delayMs / 1000)} s (attempt ${info.attempt})`)
        : undefined,
    },
  });
}

/** The exit code a finished task stands for. */
function exitFor(task: Task): number {
  return task.status === 'completed' ? EXIT.completed : EXIT.failed;
}

function printTask(task: Task, options: GlobalOptions): void {
  if (options.json) return out(JSON.stringify(task, null, 2));
  const lines = [
    `${task.id}  ${task.type}  ${task.status}${task.provider ? `  (${task.provider})` : ''}`,
    `created ${task.created_at}${task.completed_at ? `, finished ${task.completed_at}` : ''}`,
  ];
  if (task.error) lines.push(`error: ${task.error.code}: ${task.error.message}`);
  for (const file of outputFiles(task))
    lines.push(`file: ${file.filename ?? ''} ${file.content_type ?? ''} ${file.url}`);
  out(lines.join('\n'));
}

interface OutputFile {
  url: string;
  filename?: string;
  content_type?: string;
}

function outputFiles(task: Task): OutputFile[] {
  const files = task.output?.files;
  return Array.isArray(files) ? files.filter((f): f is OutputFile => typeof (f as OutputFile)?.url === 'string') : [];
}

/** Shows a task's events as they come: a progress bar on a terminal, and a line per change of state. */
class LiveProgress {
  private readonly bars?: MultiBar;
  private readonly bar?: ReturnType<MultiBar['create']>;
  private lastStatus = '';

  constructor(
    task: Task,
    private readonly quiet: boolean,
  ) {
    if (quiet) return;
    err(`${task.id}  ${task.type}  ${task.status}`);
    this.lastStatus = task.status;
    if (!process.stderr.isTTY) return;
    this.bars = new MultiBar(
      { format: ' {bar} {percentage}% | {status}', hideCursor: true, clearOnComplete: false },
      Presets.shades_classic,
    );
    this.bar = this.bars.create(100, 0, { status: task.status });
  }

  event(event: TaskEvent): void {
    if (this.quiet) return;
    const { status, progress } = event.data;
    this.bar?.update(Math.round(progress * 100), { status });
    if (status === this.lastStatus && !isTerminalEvent(event)) return;
    this.lastStatus = status;
    const line = `${event.timestamp}  ${event.event_type}  ${status}${event.data.error ? `: ${event.data.error.message}` : ''}`;
    if (this.bars) this.bars.log(`${line}\n`);
    else err(line);
  }

  stop(): void {
    this.bars?.stop();
  }
}

/** Waits for the task over its live events, showing them; exit 0 completed, 1 failed or cancelled, 3 timeout. */
async function waitAndReport(media: MediaTasks, task: Task, timeoutS: number | undefined, options: GlobalOptions): Run {
  const progress = new LiveProgress(task, options.json);
  try {
    const timeout = timeoutS !== undefined ? timeoutS * 1000 : undefined;
    const finished = await media.tasks.waitFor(task.id, { timeout, onEvent: (e) => progress.event(e) });
    progress.stop();
    printTask(finished, options);
    return exitFor(finished);
  } catch (error) {
    progress.stop();
    throw error;
  }
}

/** `--name value`, `--name=value`, or a bare `--flag` (true); kebab-case names become the API's snake_case. */
export function parseFields(args: string[]): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith('--') || arg === '--')
      throw new UsageError(`unexpected argument ${arg}: fields are --name value`);
    const eq = arg.indexOf('=');
    const name = (eq > 0 ? arg.slice(2, eq) : arg.slice(2)).replace(/-/g, '_');
    if (!name) throw new UsageError(`a field needs a name: ${arg}`);
    let raw: string | true;
    if (eq > 0) raw = arg.slice(eq + 1);
    else if (i + 1 < args.length && !args[i + 1].startsWith('--')) raw = args[++i];
    else raw = true;
    fields[name] = raw === true ? true : fieldValue(raw);
  }
  return fields;
}

/** Numbers, booleans, null, arrays and objects are read as JSON; anything else is a string. */
function fieldValue(raw: string): unknown {
  if (/^(-?\d+(\.\d+)?|true|false|null)$/.test(raw) || /^\s*[[{]/.test(raw)) {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      return raw;
    }
  }
  return raw;
}

/** Splits submit's own flags from the task's fields. */
function submitArgs(args: string[]): {
  own: { wait: boolean; file?: string; timeout?: number; idempotencyKey?: string };
  global: Partial<GlobalOptions>;
  fields: string[];
} {
  const own: { wait: boolean; file?: string; timeout?: number; idempotencyKey?: string } = { wait: false };
  const global: Partial<GlobalOptions> = {};
  const fields: string[] = [];
  const value = (i: number, name: string) => {
    if (i >= args.length || args[i].startsWith('--')) throw new UsageError(`${name} needs a value`);
    return args[i];
  };
  for (let i = 0; i < args.length; i++) {
    switch (args[i]) {
      case '--wait':
        own.wait = true;
        break;
      case '--json':
        global.json = true;
        break;
      case '--file':
        own.file = value(++i, '--file');
        break;
      case '--timeout':
        own.timeout = seconds(value(++i, '--timeout'));
        break;
      case '--idempotency-key':
        own.idempotencyKey = value(++i, '--idempotency-key');
        break;
      case '--url':
        global.url = value(++i, '--url');
        break;
      case '--token':
        global.token = value(++i, '--token');
        break;
      case '--api-key':
        global.apiKey = value(++i, '--api-key');
        break;
      default:
        fields.push(args[i]);
    }
  }
  return { own, global, fields };
}

function seconds(raw: string): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--timeout takes seconds, a positive number (got ${raw})`);
  return n;
}

async function submit(type: string, rest: string[], base: GlobalOptions): Run {
  const { own, global, fields } = submitArgs(rest);
  const options = { ...base, ...global };
  const taskType = taskTypeOf(type);
  if (!taskType) throw new UsageError(`unknown task type ${type}; one of ${taskTypeNames().join(', ')}`);
  let input: Record<string, unknown> = {};
  if (own.file) {
    const text = await readFile(own.file, 'utf8').catch(() => {
      throw new UsageError(`cannot read ${own.file}`);
    });
    try {
      input = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new UsageError(`${own.file} is not JSON`);
    }
  }
  input = { ...input, ...parseFields(fields) };
  const media = client(options);
  const task = await media.tasks.create(taskType, input, {
    idempotencyKey: own.idempotencyKey,
  });
  if (!own.wait) {
    printTask(task, options);
    return EXIT.completed;
  }
  return waitAndReport(media, task, own.timeout, options);
}

function taskTypeNames(): string[] {
  return [...Object.keys(TASK_TYPE_ALIASES), ...Object.keys(CREATE_PATHS)];
}

async function list(query: TaskListQuery, all: boolean, options: GlobalOptions): Run {
  const media = client(options);
  const tasks: Task[] = [];
  if (all) for await (const task of media.tasks.list(query)) tasks.push(task);
  else tasks.push(...(await media.tasks.listPage(query)).data);
  if (options.json) {
    out(JSON.stringify(tasks, null, 2));
    return EXIT.completed;
  }
  const rows = tasks.map((t) => [
    t.id,
    t.type,
    t.status,
    `${Math.round(t.progress * 100)}%`,
    t.provider ?? '',
    t.created_at,
  ]);
  out(table(['ID', 'TYPE', 'STATUS', 'PROGRESS', 'PROVIDER', 'CREATED'], rows));
  return EXIT.completed;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

async function watch(id: string, options: GlobalOptions): Run {
  const media = client(options);
  let last: TaskEvent | undefined;
  for await (const event of media.tasks.watch(id)) {
    last = event;
    if (options.json) out(JSON.stringify(event));
    else {
      const { status, progress, error } = event.data;
      out(
        `${event.timestamp}  ${event.event_type}  ${status}  ${Math.round(progress * 100)}%${error ? `  ${error.code}: ${error.message}` : ''}`,
      );
    }
  }
  return last?.event_type === 'task.completed' ? EXIT.completed : EXIT.failed;
}

/** Fetches each output file of a completed task into `dir` (made when missing). */
async function download(id: string, dir: string, options: GlobalOptions): Run {
  const media = client(options);
  const task = await media.tasks.get(id);
  if (task.status !== 'completed') {
    err(`task ${id} is ${task.status}: nothing to download`);
    return EXIT.failed;
  }
  const files = outputFiles(task);
  await mkdir(dir, { recursive: true });
  const saved: string[] = [];
  for (const [i, file] of files.entries()) {
    const response = await fetch(new URL(file.url, media.baseUrl));
    if (!response.ok) throw new MediaTasksError(`GET ${file.url}: HTTP ${response.status}`);
    // Only the last segment of the name: a name from the server never writes outside `dir`.
    const name = basename(file.filename ?? '') || `output-${i + 1}`;
    const path = resolve(dir, name);
    await writeFile(path, Buffer.from(await response.arrayBuffer()));
    saved.push(path);
  }
  if (options.json) out(JSON.stringify({ id, files: saved }, null, 2));
  else for (const path of saved) out(path);
  return EXIT.completed;
}

function printJson(value: unknown): number {
  out(JSON.stringify(value, null, 2));
  return EXIT.completed;
}

/** The platform's own token script (scripts/token.js of the checkout this command line belongs to). */
function token(args: string[]): number {
  const script = join(__dirname, '..', '..', '..', 'scripts', 'token.js');
  if (!existsSync(script)) {
    err('signing a token needs the platform checkout (its JWT_SECRET): run `npm run token` there');
    return EXIT.usage;
  }
  const result = spawnSync(process.execPath, [script, ...args], { stdio: 'inherit' });
  return result.status ?? EXIT.failed;
}

/** The client package's version (dist/cli.js sits one folder below its package.json). */
function packageVersion(): string {
  return (JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
}

function program(exit: (code: number) => void): Command {
  const cli = new Command('media-tasks')
    .description('Submit and follow media tasks on the platform (exit 0 completed, 1 failed, 2 usage, 3 timeout)')
    .option('--url <url>', 'the platform (env MEDIA_TASKS_URL)', process.env.MEDIA_TASKS_URL ?? DEFAULT_URL)
    .option('--token <jwt>', 'a bearer token (env MEDIA_TASKS_TOKEN)', process.env.MEDIA_TASKS_TOKEN)
    .option('--api-key <key>', 'an API key (env MEDIA_TASKS_API_KEY)', process.env.MEDIA_TASKS_API_KEY)
    .option('--json', 'JSON output, for scripts', false)
    .version(packageVersion())
    .showHelpAfterError()
    .exitOverride();
  const g = () => cli.opts<GlobalOptions>();
  const run = (work: () => Run | number) => async () => exit(await work());

  cli
    .command('token')
    .description("sign a bearer token with the platform's JWT_SECRET: token --sub alice [--admin] [--ttl 24h]")
    .allowUnknownOption()
    .helpOption(false)
    .argument('[args...]')
    .action((args: string[]) => exit(token(args)));

  cli
    .command('submit')
    .description(
      'submit a task: submit <type> [--field value…] [--file input.json] [--wait] [--timeout s] [--idempotency-key k]',
    )
    .argument('<type>', `one of ${taskTypeNames().join(', ')}`)
    .argument('[fields...]', '--name value pairs (numbers, booleans and JSON are read as JSON)')
    .allowUnknownOption()
    .action((type: string, fields: string[]) => run(() => submit(type, fields, g()))());

  cli
    .command('get')
    .description('show a task')
    .argument('<id>')
    .action((id: string) =>
      run(async () => {
        const task = await client(g()).tasks.get(id);
        printTask(task, g());
        return EXIT.completed;
      })(),
    );

  cli
    .command('ls')
    .description('your tasks, newest first')
    .option('--status <status>', 'queued, processing, completed, failed, cancelled')
    .option('--type <type>', 'a task type')
    .option('--limit <n>', 'how many (a page)', '20')
    .option('--all', 'every page', false)
    .action((opts: { status?: string; type?: string; limit: string; all: boolean }) =>
      run(() => {
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new UsageError('--limit takes 1 to 100');
        const taskType = opts.type === undefined ? undefined : taskTypeOf(opts.type);
        if (opts.type !== undefined && !taskType) throw new UsageError(`unknown task type ${opts.type}`);
        const query = { limit, status: opts.status, task_type: taskType } as TaskListQuery;
        return list(query, opts.all, g());
      })(),
    );

  cli
    .command('cancel')
    .description('cancel a queued or running task')
    .argument('<id>')
    .action((id: string) =>
      run(async () => {
        printTask(await client(g()).tasks.cancel(id), g());
        return EXIT.completed;
      })(),
    );

  cli
    .command('retry')
    .description('run a failed or cancelled task again (add --wait to follow it)')
    .argument('<id>')
    .option('--wait', 'wait for it to finish', false)
    .option('--timeout <s>', 'give up waiting after this many seconds (exit 3)')
    .action((id: string, opts: { wait: boolean; timeout?: string }) =>
      run(async () => {
        const media = client(g());
        const task = await media.tasks.retry(id);
        if (!opts.wait) {
          printTask(task, g());
          return EXIT.completed;
        }
        return waitAndReport(media, task, opts.timeout ? seconds(opts.timeout) : undefined, g());
      })(),
    );

  cli
    .command('watch')
    .description("print a task's events as they happen, until it finishes")
    .argument('<id>')
    .action((id: string) => run(() => watch(id, g()))());

  cli
    .command('download')
    .description("fetch a completed task's output files into dir (default .)")
    .argument('<id>')
    .argument('[dir]', 'where to write the files', '.')
    .action((id: string, dir: string) => run(() => download(id, dir, g()))());

  cli
    .command('stats')
    .description('success rate, durations, costs, provider health')
    .action(() => run(async () => printJson(await client(g()).statistics()))());

  cli
    .command('queues')
    .description('counts per queue (an admin token, or an API key with queue:read)')
    .action(() =>
      run(async () => {
        const stats = await client(g()).queueStats();
        if (g().json) return printJson(stats);
        const rows = Object.entries(stats.queues).map(([name, q]) => [
          name,
          ...[q.waiting, q.prioritized, q.active, q.delayed, q.completed, q.failed].map(String),
        ]);
        out(table(['QUEUE', 'WAITING', 'PRIORITIZED', 'ACTIVE', 'DELAYED', 'COMPLETED', 'FAILED'], rows));
        return EXIT.completed;
      })(),
    );
  return cli;
}

/** What an error means for the exit code, with its message on stderr. */
function report(error: unknown): number {
  if (error instanceof UsageError) {
    err(`media-tasks: ${error.message}`);
    return EXIT.usage;
  }
  if (error instanceof ValidationError) {
    err(`media-tasks: ${error.message}`);
    for (const problem of error.errors) err(`  ${problem.field}: ${problem.message}`);
    return EXIT.usage;
  }
  if (error instanceof TimeoutError) {
    err(`media-tasks: ${error.message}`);
    return EXIT.timeout;
  }
  if (error instanceof ApiError) {
    err(
      `media-tasks: ${error.status} ${error.code}: ${error.message}${error.requestId ? ` (request ${error.requestId})` : ''}`,
    );
    return EXIT.failed;
  }
  // fetch's own failure (refused, reset, unknown host) says why in its cause.
  const cause = error instanceof Error && error.name === 'TypeError' ? (error.cause as Error | undefined) : undefined;
  const message = error instanceof Error ? error.message : String(error);
  err(`media-tasks: ${cause?.message ? `cannot reach the platform: ${cause.message}` : message}`);
  return EXIT.failed;
}

export async function main(argv: string[]): Promise<number> {
  let code: number | undefined;
  const cli = program((c) => (code = c));
  try {
    await cli.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; every other complaint of the parser is a usage error.
      return error.exitCode === 0 ? EXIT.completed : EXIT.usage;
    }
    return report(error);
  }
  return code ?? EXIT.completed;
}

/** Runs the command line of this process (bin/media-tasks.js) and sets its exit code. */
export function run(): void {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: unknown) => (process.exitCode = report(error)),
  );
}
