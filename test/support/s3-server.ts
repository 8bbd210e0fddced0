import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** s3rver ships no types: the part of its API the tests use. */
interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

/** The keys s3rver checks SigV4 signatures against. */
export const S3_TEST_KEYS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface S3TestServer {
  endpoint: string;
  bucket: string;
  /** Where it keeps objects on disk: `<dir>/<bucket>/<key>._S3rver_object`. */
  dir: string;
  close(): Promise<void>;
}

/**
 * An S3-compatible server on loopback (s3rver, from the npm registry): PUT, multipart uploads, GET, HEAD, DELETE,
 * copies and presigned GETs, objects kept on disk, SigV4 checked against S3_TEST_KEYS.
 */
export async function startS3Server(bucket = 'media'): Promise<S3TestServer> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const S3rver = require('s3rver') as S3rverClass;
  const dir = await mkdtemp(join(tmpdir(), 's3-server-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dir,
    configureBuckets: [{ name: bucket }],
    vhostBuckets: false,
  });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    dir,
    close: async () => {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
