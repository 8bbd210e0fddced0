import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { join } from 'node:path';

/** ffmpeg with its banner and prompts off, for making test media. */
export function ffmpeg(...args: string[]): void {
  execFileSync('ffmpeg', ['-hide_banner', '-y', ...args], { stdio: 'ignore' });
}

/**
 * Media inputs the platform and the emulators download: a loopback server of our own, with real media made by
 * ffmpeg (a frame, a 2-second silent video, 3 seconds of sound) and subtitles for them.
 */
export async function mediaServer(dir: string): Promise<{ server: Server; url: string }> {
  ffmpeg('-f', 'lavfi', '-i', 'testsrc=size=320x240', '-frames:v', '1', join(dir, 'frame.png'));
  ffmpeg(
    ...['-f', 'lavfi', '-i', 'color=c=gray:size=320x240:duration=2'],
    ...['-c:v', 'libx264', '-pix_fmt', 'yuv420p', join(dir, 'v.mp4')],
  );
  ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=440:duration=3', '-c:a', 'libmp3lame', join(dir, 'talk.mp3'));
  const files: Record<string, [string, Buffer | string]> = {
    '/frame.png': ['image/png', readFileSync(join(dir, 'frame.png'))],
    '/v.mp4': ['video/mp4', readFileSync(join(dir, 'v.mp4'))],
    '/talk.mp3': ['audio/mpeg', readFileSync(join(dir, 'talk.mp3'))],
    '/v.srt': ['application/x-subrip', '1\n00:00:00,000 --> 00:00:01,500\nHello from the sandbox\n'],
  };
  const server = createServer((req, res) => {
    const file = files[req.url ?? ''];
    if (file) return void res.writeHead(200, { 'content-type': file[0] }).end(file[1]);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}
