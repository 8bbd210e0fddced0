import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { LRUCache } from 'lru-cache';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 as PNG chunks use it (ISO 3309). */
export function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typed = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([length, typed, crc]);
}

/**
 * A small real PNG (8-bit RGB) whose picture follows from `seedText`: a two-colour gradient in a direction and a
 * disc, all chosen by a hash of the text. Same text, same bytes; different prompts look different. Used by the
 * sandbox emulators in place of generated images.
 */
export function sandboxPng(seedText: string, width = 64, height = 64): Buffer {
  const key = `${width}x${height}|${seedText}`;
  let png = recent.get(key);
  if (!png) recent.set(key, (png = drawPng(seedText, width, height)));
  return png;
}

/** Pictures drawn lately (a client repeating a prompt gets the same bytes without drawing them again). */
const recent = new LRUCache<string, Buffer>({ max: 256, maxSize: 16 * 1024 * 1024, sizeCalculation: (b) => b.length });

function drawPng(seedText: string, width: number, height: number): Buffer {
  const h = createHash('sha256').update(seedText).digest();
  const from = [h[0], h[1], h[2]];
  const to = [h[3], h[4], h[5]];
  const disc = [h[6], h[7], h[8]];
  const angle = (h[9] / 256) * 2 * Math.PI;
  const [dx, dy] = [Math.cos(angle), Math.sin(angle)];
  const cx = (h[10] / 255) * width;
  const cy = (h[11] / 255) * height;
  const radius = (0.15 + (h[12] / 255) * 0.25) * Math.min(width, height);
  const span = Math.abs(dx) * width + Math.abs(dy) * height || 1;
  const offset = Math.min(0, dx * width) + Math.min(0, dy * height);

  // Each scanline: filter type 0 (none), then RGB triples.
  const raw = Buffer.alloc(height * (1 + width * 3));
  for (let y = 0; y < height; y++) {
    const row = y * (1 + width * 3);
    for (let x = 0; x < width; x++) {
      const t = (x * dx + y * dy - offset) / span;
      const inDisc = (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2;
      for (let c = 0; c < 3; c++) {
        raw[row + 1 + x * 3 + c] = inDisc ? disc[c] : Math.round(from[c] + (to[c] - from[c]) * t);
      }
    }
  }

  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: truecolour
  // compression, filter and interlace methods: 0
  return Buffer.concat([
    SIGNATURE,
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
