/**
 * The media type of a file told from its first bytes (magic numbers), never from its name or the type a client
 * claims: what the platform's providers read (images, video, audio, subtitles and text). Undefined: none of them.
 */

/** Bytes looked at: enough for every signature below and for a text file's first lines. */
export const SNIFF_BYTES = 4096;

const ascii = (head: Buffer, offset: number, text: string) =>
  head.length >= offset + text.length && head.toString('latin1', offset, offset + text.length) === text;

/** ISO base media (MP4, MOV, M4A): `ftyp` at 4, the major brand after it. */
function isoMedia(head: Buffer): string | undefined {
  if (!ascii(head, 4, 'ftyp') || head.length < 12) return undefined;
  const brand = head.toString('latin1', 8, 12);
  if (brand === 'qt  ') return 'video/quicktime';
  if (brand === 'M4A ' || brand === 'M4B ' || brand === 'M4P ') return 'audio/mp4';
  return 'video/mp4';
}

/** Matroska's EBML header: only its WebM flavour (DocType "webm") is taken. */
function ebml(head: Buffer): string | undefined {
  if (!(head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf && head[3] === 0xa3)) return undefined;
  return head.subarray(0, 64).includes('webm', 0, 'latin1') ? 'video/webm' : undefined;
}

/** An MPEG audio frame header (layer III) or an ID3v2 tag ahead of one. */
function mp3(head: Buffer): boolean {
  if (ascii(head, 0, 'ID3')) return true;
  return head.length >= 2 && head[0] === 0xff && (head[1] & 0xe0) === 0xe0 && ((head[1] >> 1) & 0x3) === 0x1;
}

const SRT_TIMING = /^\d{1,2}:\d{2}:\d{2}[,.]\d{1,3}\s+-->\s+\d{1,2}:\d{2}:\d{2}[,.]\d{1,3}/;

/**
 * UTF-8 text (a BOM allowed, no NUL, no control bytes but tabs and line ends): WebVTT by its header, SubRip by its
 * first cue, else plain text. A multi-byte character cut by the end of `head` is not held against it.
 */
function text(head: Buffer, complete: boolean): string | undefined {
  let bytes = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? head.subarray(3) : head;
  if (bytes.length === 0) return undefined;
  for (const byte of bytes) if (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d && byte !== 0x0c) return;
  if (!complete) bytes = bytes.subarray(0, lastWholeCharEnd(bytes));
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
  if (/^WEBVTT([ \t\r\n]|$)/.test(decoded)) return 'text/vtt';
  const lines = decoded.replace(/^\s+/, '').split(/\r?\n/);
  if (/^\d+\s*$/.test(lines[0] ?? '') && SRT_TIMING.test(lines[1] ?? '')) return 'application/x-subrip';
  return 'text/plain';
}

/** Where the last UTF-8 character that fits whole in `bytes` ends. */
function lastWholeCharEnd(bytes: Buffer): number {
  for (let back = 1; back <= Math.min(4, bytes.length); back++) {
    const byte = bytes[bytes.length - back];
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: its lead is further back
    const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return needed > back ? bytes.length - back : bytes.length;
  }
  return bytes.length;
}

/**
 * The type of a file from its first bytes (`head`, at most SNIFF_BYTES; `complete` when that is the whole file).
 */
export function sniffMediaType(head: Buffer, complete = head.length < SNIFF_BYTES): string | undefined {
  if (head.length >= 8 && head.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
    return 'image/png';
  }
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'image/jpeg';
  if (ascii(head, 0, 'GIF87a') || ascii(head, 0, 'GIF89a')) return 'image/gif';
  if (ascii(head, 0, 'RIFF') && ascii(head, 8, 'WEBP')) return 'image/webp';
  if (ascii(head, 0, 'RIFF') && ascii(head, 8, 'WAVE')) return 'audio/wav';
  if (ascii(head, 0, 'fLaC')) return 'audio/flac';
  if (ascii(head, 0, 'OggS')) return 'audio/ogg';
  const iso = isoMedia(head) ?? ebml(head);
  if (iso) return iso;
  if (mp3(head)) return 'audio/mpeg';
  return text(head, complete);
}

/** Whether the rest of a file sniffed as `type` may hold this chunk: text never holds a NUL byte. */
export function chunkFits(type: string, chunk: Buffer): boolean {
  return !isText(type) || !chunk.includes(0);
}

export function isText(type: string): boolean {
  return type === 'text/plain' || type === 'text/vtt' || type === 'application/x-subrip';
}
