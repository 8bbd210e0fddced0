import { Readable } from 'node:stream';
import { AppConfig } from '../config/app-config';
import { StorageService } from '../storage/storage.service';
import { UploadEntity } from './entities/upload.entity';
import { StoredUploads } from './stored-uploads';
import { UploadsRepository } from './uploads.repository';

const ID = '0b7d6a1e-8f43-4a4e-9d55-0f7c2a1e9b10';
const JWT_SECRET = 'x'.repeat(40);

function storedUploads(opts: { signed: string; env?: Record<string, string>; expiresAt?: Date }) {
  const row: UploadEntity = {
    id: ID,
    owner: 'alice',
    key: `uploads/${ID}.png`,
    contentType: 'image/png',
    size: 3,
    sha256: 'h',
    filename: null,
    createdAt: new Date(),
    expiresAt: opts.expiresAt ?? new Date(Date.now() + 60_000),
  };
  const repo = { findById: jest.fn((id: string) => Promise.resolve(id === ID ? row : null)) };
  const storage = {
    signedUrl: jest.fn(() => Promise.resolve(opts.signed)),
    open: jest.fn(() => Promise.resolve({ stream: Readable.from([Buffer.from('abc')]), size: 3, contentType: 'x/y' })),
  };
  const config = AppConfig.fromEnv({ JWT_SECRET, ...opts.env });
  return new StoredUploads(repo as unknown as UploadsRepository, storage as unknown as StorageService, config);
}

describe('StoredUploads', () => {
  it('links an upload with the storage signed URL as it is when absolute (S3, PUBLIC_BASE_URL)', async () => {
    const s3 = 'https://bucket.s3.amazonaws.com/uploads/x.png?X-Amz-Signature=abc';
    expect(await storedUploads({ signed: s3 }).link(ID)).toBe(s3);
  });

  it('puts a relative local link on PUBLIC_URL, and fails permanently without an address to link to', async () => {
    const relative = `/files/uploads/${ID}.png?expires=1&sig=s`;
    const withBase = storedUploads({ signed: relative, env: { PUBLIC_URL: 'https://media.example.com/' } });
    expect(await withBase.link(ID)).toBe(`https://media.example.com${relative}`);
    await expect(storedUploads({ signed: relative }).link(ID)).rejects.toMatchObject({
      code: 'input_unreachable',
      retryable: false,
      message: expect.stringContaining('PUBLIC_BASE_URL'),
    });
  });

  it('can link where storage is S3 or a public address is set, and only there', () => {
    const can = (env: Record<string, string>) => storedUploads({ signed: 'unused', env }).canLink();
    const s3 = { OUTPUT_STORAGE: 's3', S3_BUCKET: 'media', S3_ACCESS_KEY_ID: 'a', S3_SECRET_ACCESS_KEY: 's' };
    expect([can({}), can(s3)]).toEqual([false, true]);
    expect(can({ PUBLIC_BASE_URL: 'https://files.example.com' })).toBe(true);
    expect(can({ PUBLIC_URL: 'https://media.example.com' })).toBe(true);
  });

  it('treats an upload past its time as gone, for links and for reads', async () => {
    const expired = storedUploads({ signed: 'https://x/y', expiresAt: new Date(Date.now() - 1000) });
    await expect(expired.link(ID)).rejects.toMatchObject({ code: 'input_unreachable' });
    expect(await expired.open(ID)).toBeNull();
    const live = await storedUploads({ signed: 'https://x/y' }).open(ID);
    expect(live?.contentType).toBe('image/png'); // the sniffed type, not the backend's guess
  });
});
