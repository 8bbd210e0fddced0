import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppConfig } from '../config/app-config';
import { TaskType } from '../tasks/task.enums';
import { ResultCache } from './result-cache.service';
import { SharedCacheState } from './shared-cache-state';

/** A shared layer that keeps nothing: these tests are about the disk layer. */
class NoSharedState extends SharedCacheState {
  readonly hasSharedLayer = false;
  getEntry = async () => null;
  setEntry = async () => undefined;
  entryCount = async () => 0;
  claimFirstCall = async () => true;
  releaseFirstCall = async () => [];
  addCounts = async () => undefined;
  readCounts = async () => ({});
  purge = async () => undefined;
  open = () => undefined;
  close = async () => undefined;
}

const MINUTE = 60_000;
/** A result of about 1,000 bytes once stored. */
const result = (i: number) => ({ output: { text: `${i}`.padEnd(950, '.') }, provider: 'p' });

describe('ResultCache disk sweep', () => {
  let dir: string;
  let cache: ResultCache;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cache-sweep-'));
    const config = AppConfig.fromEnv({ CACHE_DIR: dir, CACHE_DISK_MAX_BYTES: '3500' });
    cache = new ResultCache(config, new NoSharedState());
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const entries = async () => {
    let count = 0;
    for (const shard of await readdir(dir)) count += (await readdir(join(dir, shard))).length;
    return count;
  };

  it('evicts the least recently used entries past the size bound', async () => {
    for (let i = 0; i < 5; i++) await cache.set(cache.keyOf(TaskType.ImageGeneration, { i }, 'alice'), result(i));
    expect(await cache.sweepDisk()).toBe(2);
    expect(await entries()).toBe(3);
  });

  it('reads the folder again only after a while, or once this process may have filled it', async () => {
    const now = Date.now();
    await cache.set(cache.keyOf(TaskType.ImageGeneration, { i: 0 }, 'alice'), result(0));
    expect(await cache.sweepDisk(now)).toBe(0); // read: 1 entry, well under the bound
    // Entries another process wrote: unseen until the next read of the folder, ten minutes on.
    await mkdir(join(dir, 'zz'), { recursive: true });
    await writeFile(join(dir, 'zz', 'other1.json'), 'x'.repeat(2000));
    await writeFile(join(dir, 'zz', 'other2.json'), 'x'.repeat(2000));
    expect(await cache.sweepDisk(now + MINUTE)).toBe(0);
    expect(await entries()).toBe(3);
    expect(await cache.sweepDisk(now + 11 * MINUTE)).toBeGreaterThan(0);
    expect(await entries()).toBeLessThan(3);
    // This process writing past the bound makes the next sweep read at once.
    for (let i = 1; i < 5; i++) await cache.set(cache.keyOf(TaskType.ImageGeneration, { i }, 'alice'), result(i));
    expect(await cache.sweepDisk(now + 12 * MINUTE)).toBeGreaterThan(0);
  });
});
