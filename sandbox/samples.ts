import { SANDBOX_MP4 } from './emulators/sandbox-mp4';
import { sandboxPng } from './emulators/sandbox-png';

/** The sample files POST /api/v1/sandbox/samples stores, in the order its answer lists them. */
export const SAMPLE_KINDS = ['image', 'video', 'audio', 'subtitles'] as const;
export type SampleKind = (typeof SAMPLE_KINDS)[number];

export interface SampleFile {
  filename: string;
  bytes: Buffer;
}

/** Length of the audio sample; the subtitle cues fit in it. */
export const SAMPLE_AUDIO_SECONDS = 3;
const SAMPLE_RATE = 16000;
/** One rising tone a second (C5, E5, G5), so a player, a waveform or a transcript shows three parts. */
const TONES_HZ = [523.25, 659.25, 783.99];

/**
 * Genuine files of every media kind a task reads, so a new user can run each task type in the sandbox without a
 * file of their own: a 256x256 PNG, the emulators' 1-second H.264 MP4, a 3-second WAV and an SRT whose cues fit the
 * audio. Made in code (no ffmpeg at run time) and the same bytes every time.
 */
export function sampleFiles(): Record<SampleKind, SampleFile> {
  return {
    image: { filename: 'sample.png', bytes: sandboxPng('media-tasks sandbox sample', 256, 256) },
    video: { filename: 'sample.mp4', bytes: SANDBOX_MP4 },
    audio: { filename: 'sample.wav', bytes: sampleWav() },
    subtitles: { filename: 'sample.srt', bytes: Buffer.from(SAMPLE_SRT, 'utf8') },
  };
}

const SAMPLE_SRT = [
  '1',
  '00:00:00,000 --> 00:00:01,000',
  'Hello from the sandbox.',
  '',
  '2',
  '00:00:01,000 --> 00:00:02,000',
  'These captions are a sample.',
  '',
  '3',
  '00:00:02,000 --> 00:00:02,900',
  'Upload your own to replace them.',
  '',
].join('\n');

/**
 * SAMPLE_AUDIO_SECONDS of 16 kHz mono 16-bit PCM in a RIFF/WAVE file: a tone a second, each faded in and out over
 * 20 ms so the joins do not click.
 */
export function sampleWav(): Buffer {
  const samples = SAMPLE_RATE * SAMPLE_AUDIO_SECONDS;
  const data = Buffer.alloc(samples * 2);
  const fade = SAMPLE_RATE * 0.02;
  for (let i = 0; i < samples; i++) {
    const second = Math.floor(i / SAMPLE_RATE);
    const within = i % SAMPLE_RATE;
    const envelope = Math.min(1, within / fade, (SAMPLE_RATE - 1 - within) / fade);
    const value = 0.3 * envelope * Math.sin((2 * Math.PI * TONES_HZ[second % TONES_HZ.length] * i) / SAMPLE_RATE);
    data.writeInt16LE(Math.round(value * 32767), i * 2);
  }
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVE', 8, 'latin1');
  header.write('fmt ', 12, 'latin1');
  header.writeUInt32LE(16, 16); // size of the fmt chunk
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(SAMPLE_RATE, 24);
  header.writeUInt32LE(SAMPLE_RATE * 2, 28); // bytes per second
  header.writeUInt16LE(2, 32); // bytes per frame
  header.writeUInt16LE(16, 34); // bits per sample
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}
