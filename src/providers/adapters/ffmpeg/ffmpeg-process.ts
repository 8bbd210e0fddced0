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

/**
 * The demuxers each kind of input may be opened with. A downloaded file is read as what it says it is, so a playlist
 * (hls, dash), a concat script or an image sequence, which make ffmpeg open other files, is never followed: a user
 * could otherwise point one at any file on the worker, other users' outputs included.
 */
export const INPUT_FORMATS = {
  image: ['png_pipe', 'jpeg_pipe', 'webp_pipe', 'bmp_pipe', 'tiff_pipe'],
  video: ['mov', 'matroska', 'mpegts', 'avi', 'flv', 'mpeg', 'asf', 'ogg'],
  audio: ['mp3', 'wav', 'aac', 'flac', 'ogg', 'aiff', 'mov', 'matroska', 'mpegts', 'avi', 'flv', 'mpeg', 'asf'],
} as const;

export type InputKind = keyof typeof INPUT_FORMATS;

/**
 * The options that open one local input for ffmpeg or ffprobe: the file protocol only (no network, no pipes) and the
 * demuxers of its kind only; `options` are the input's own (e.g. `-loop 1`).
 */
export function inputArgs(file: string, kind: InputKind, options: string[] = []): string[] {
  return [
    '-protocol_whitelist',
    'file',
    '-format_whitelist',
    INPUT_FORMATS[kind].join(','),
    ...options,
    '-i',
    `file:${file}`,
  ];
}

/** The demuxer ffmpeg or ffprobe refused because it is not on the list, from its stderr; else undefined. */
export function refusedFormat(err: ToolError): string | undefined {
  return /\[([\w,]+) @ 0x[0-9a-f]+\] Format not on whitelist/.exec(err.stderr)?.[1];
}

/** ffprobe's view of a file read as `kind`: its streams and container. */
export async function probe(ffprobe: string, file: string, kind: InputKind, signal?: AbortSignal): Promise<Probe> {
  const out = await runTool(
    ffprobe,
    [
      '-v',
      'error',
      '-show_entries',
      'stream=codec_type,codec_name,width,height,pix_fmt:format=duration,format_name',
      '-of',
      'json',
      ...inputArgs(file, kind),
    ],
    signal,
  );
  return JSON.parse(out) as Probe;
}
