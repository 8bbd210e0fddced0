import { spawn, spawnSync } from 'node:child_process';

/** The last lines of a tool's stderr, for an error message. */
function tail(text: string, lines = 4): string {
  return text.trim().split('\n').slice(-lines).join(' | ');
}

export class ToolError extends Error {
  constructor(
    readonly tool: string,
    readonly stderr: string,
    code: number | null,
  ) {
    super(`${tool} exited with ${code}: ${tail(stderr)}`);
    this.name = 'ToolError';
  }
}

/** Runs ffmpeg or ffprobe (no shell); an abort kills it. Resolves with stdout, rejects with a ToolError. */
export function runTool(command: string, args: string[], signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { signal, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-8192);
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new ToolError(command, stderr, code))));
  });
}

/** True when the binary runs (`-version`). */
export function toolAvailable(command: string): boolean {
  try {
    return spawnSync(command, ['-version'], { stdio: 'ignore', timeout: 5000 }).status === 0;
  } catch {
    return false;
  }
}

export interface ProbedStream {
  codec_type: string;
  codec_name?: string;
  width?: number;
  height?: number;
  pix_fmt?: string;
}

export interface Probe {
  streams: ProbedStream[];
  format?: { duration?: string; format_name?: string };
}

/** ffprobe's view of a file: its streams and container. */
export async function probe(ffprobe: string, file: string, signal?: AbortSignal): Promise<Probe> {
  const out = await runTool(
    ffprobe,
    [
      '-v',
      'error',
      '-show_entries',
      'stream=codec_type,codec_name,width,height,pix_fmt:format=duration,format_name',
      '-of',
      'json',
      file,
    ],
    signal,
  );
  return JSON.parse(out) as Probe;
}
