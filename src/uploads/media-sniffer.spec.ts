import { chunkFits, SNIFF_BYTES, sniffMediaType } from './media-sniffer';

const bytes = (...parts: (string | number[])[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

describe('sniffMediaType', () => {
  it.each([
    ['png', bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]), 'image/png'],
    ['jpeg', bytes([0xff, 0xd8, 0xff, 0xe0, 0, 16]), 'image/jpeg'],
    ['gif', bytes('GIF89a', [1, 0]), 'image/gif'],
    ['webp', bytes('RIFF', [0, 0, 0, 0], 'WEBPVP8 '), 'image/webp'],
    ['wav', bytes('RIFF', [0, 0, 0, 0], 'WAVEfmt '), 'audio/wav'],
    ['mp4', bytes([0, 0, 0, 0x18], 'ftypisom', [0, 0, 2, 0]), 'video/mp4'],
    ['mov', bytes([0, 0, 0, 0x14], 'ftypqt  ', [0, 0, 2, 0]), 'video/quicktime'],
    ['m4a', bytes([0, 0, 0, 0x1c], 'ftypM4A ', [0, 0, 2, 0]), 'audio/mp4'],
    ['webm', bytes([0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x82, 0x84], 'webm', [0x42, 0x87]), 'video/webm'],
    ['mp3 with ID3', bytes('ID3', [4, 0, 0, 0, 0, 0, 0]), 'audio/mpeg'],
    ['mp3 frame', bytes([0xff, 0xfb, 0x90, 0x64, 0]), 'audio/mpeg'],
    ['ogg / opus', bytes('OggS', [0, 2], 'OpusHead'), 'audio/ogg'],
    ['flac', bytes('fLaC', [0, 0, 0, 34]), 'audio/flac'],
    ['vtt', bytes('WEBVTT\n\n00:01.000 --> 00:02.000\nHi\n'), 'text/vtt'],
    ['srt', bytes('1\r\n00:00:01,000 --> 00:00:02,500\r\nHi\r\n'), 'application/x-subrip'],
    [
      'utf-8 text with a BOM',
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('olá, mundo\n')]),
      'text/plain',
    ],
  ])('tells %s from its bytes', (_name, head, type) => {
    expect(sniffMediaType(head)).toBe(type);
  });

  it.each([
    ['matroska that is not webm', bytes([0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x82, 0x88], 'matroska')],
    ['binary bytes', bytes([0, 1, 2, 3, 0xfe, 0xff])],
    ['latin-1, not UTF-8', bytes('caf', [0xe9], ' au lait')],
    ['a PDF', bytes('%PDF-1.7\n', [0xe2, 0xe3, 0xcf, 0xd3, 0x0a, 0, 0])],
    ['nothing', Buffer.alloc(0)],
  ])('tells nothing of %s', (_name, head) => {
    expect(sniffMediaType(head)).toBeUndefined();
  });

  it('does not hold a UTF-8 character cut by the end of the head against a longer file', () => {
    const text = Buffer.from('é'.repeat(SNIFF_BYTES));
    const head = text.subarray(0, SNIFF_BYTES - 1); // ends inside a two-byte character
    expect(sniffMediaType(head, false)).toBe('text/plain');
    expect(sniffMediaType(head, true)).toBeUndefined();
  });

  it('lets text hold no NUL byte further on; binary types hold anything', () => {
    expect(chunkFits('text/plain', Buffer.from('more text'))).toBe(true);
    expect(chunkFits('application/x-subrip', Buffer.from([0x41, 0]))).toBe(false);
    expect(chunkFits('video/mp4', Buffer.from([0, 0, 0]))).toBe(true);
  });
});
