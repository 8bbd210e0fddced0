import { BeforeApplicationShutdown, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LRUCache } from 'lru-cache';
import { canonicalJson } from '../common/canonical-json';
import { AppConfig } from '../config/app-config';
import { SharedCacheState } from './shared-cache-state';
import { TaskType } from '../tasks/task.enums';

/** What a finished task leaves for an identical one: its output (pointing at stored files) and who made it. */
export interface CachedResult {
  output: Record<string, unknown>;
  provider: string;
}

export type CacheLayer = 'memory' | 'redis' | 'disk';

export interface LayerStats {
  hits: number;
  misses: number;
  evictions: number;
  entries: number;
  bytes: number | null;
}

const MEMORY_TTL_MS = 3600_000;
const DISK_TTL_MS = 7 * 24 * 3600_000;
const COUNTER_FLUSH_MS = 1000;
/**
 * How often a sweep reads the whole disk layer (a stat per entry: a full layer of small results is hundreds of
 * thousands) while this process has not written past its bound since the last read; entries past their TTL are
 * ignored when read meanwhile.
 */
const DISK_SCAN_EVERY_MS = 10 * 60_000;

/**
 * The result cache (DESIGN decision 10). The key is a hash of the task type and its normalised input — never the
 * webhook, metadata, priority or idempotency key — and, unless CACHE_SCOPE=global, its owner. Three layers, looked up
 * in order and refilled on the way back: this process's LRU (1 h, bounded by bytes), Redis (24 h, shared by every
 * process; there is no such layer on the Postgres backend), and a folder on disk (7 days, least recently used evicted
 * past CACHE_DISK_MAX_BYTES). Counters are kept in the shared state (SharedCacheState), so the statistics are the
 * cluster's; entry counts of the memory and disk layers are this process's and this host's.
 */
@Injectable()
export class ResultCache implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger('ResultCache');
  private readonly memory: LRUCache<string, string>;
  private readonly dir: string;
  private memoryEvictions = 0;
  private readonly pending = new Map<string, number>();
  private flushTimer?: NodeJS.Timeout;
  /** The disk layer's size at the end of this process's last sweep that read it, and what it has written since. */
  private lastScan?: { at: number; bytes: number };
  private writtenSinceScan = 0;

  constructor(
    private readonly config: AppConfig,
    private readonly shared: SharedCacheState,
  ) {
    this.dir = resolve(config.cache.dir);
    this.memory = new LRUCache<string, string>({
      maxSize: config.cache.memoryMaxBytes,
      sizeCalculation: (value, key) => value.length + key.length,
      ttl: MEMORY_TTL_MS,
      dispose: (_value, _key, reason) => {
        if (reason === 'evict') this.memoryEvictions++;
      },
    });
  }

  onModuleInit(): void {
    // A purge anywhere empties every process's memory layer.
    this.shared.open(() => this.memory.clear());
  }

  /** Counters not yet written go out before the connections close. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.flushCounters();
    await this.shared.close();
  }

  get enabled(): boolean {
    return this.config.cache.enabled;
  }

  /**
   * The cache key of a task: its type and its input with keys sorted and undefined values dropped, and its owner
   * unless CACHE_SCOPE=global (a hit must not tell one user what another submitted).
   */
  keyOf(type: TaskType, input: Record<string, unknown>, userId: string): string {
    const owner = this.config.cache.scope === 'user' ? `\nuser:${userId}` : '';
    return createHash('sha256')
      .update(`${type}\n${canonicalJson(input)}${owner}`)
      .digest('hex');
  }

  async get(key: string): Promise<{ result: CachedResult; layer: CacheLayer } | null> {
    const fromMemory = this.memory.get(key);
    if (fromMemory) {
      this.count('memory', 'hits');
      return { result: JSON.parse(fromMemory) as CachedResult, layer: 'memory' };
    }
    this.count('memory', 'misses');
    if (this.shared.hasSharedLayer) {
      const fromShared = await this.shared.getEntry(key);
      if (fromShared) {
        this.count('redis', 'hits');
        this.memory.set(key, fromShared);
        return { result: JSON.parse(fromShared) as CachedResult, layer: 'redis' };
      }
      this.count('redis', 'misses');
    }
    const fromDisk = await this.readDisk(key);
    if (fromDisk) {
      this.count('disk', 'hits');
      this.memory.set(key, fromDisk);
      await this.shared.setEntry(key, fromDisk);
      return { result: JSON.parse(fromDisk) as CachedResult, layer: 'disk' };
    }
    this.count('disk', 'misses');
    return null;
  }

  async set(key: string, result: CachedResult): Promise<void> {
    const value = JSON.stringify(result);
    this.memory.set(key, value);
    await Promise.all([
      this.shared.setEntry(key, value),
      this.writeDisk(key, value).catch((err: Error) =>
        this.logger.warn(`cache entry not kept on disk: ${err.message}`),
      ),
    ]);
  }

  /**
   * Single flight: of identical tasks in flight together, the first to ask calls the provider (true); the others
   * wait for its result, and are listed so that their delayed jobs can be run as soon as it is done. The claim
   * lapses after `ttlMs` (the task's timeout) if the task holding it dies.
   */
  async claimFirstCall(key: string, taskId: string, ttlMs: number): Promise<boolean> {
    return this.shared.claimFirstCall(key, taskId, Math.max(1000, ttlMs));
  }

  /**
   * Gives the claim up (done, failed or cancelled), if this task holds it; answers the tasks that were waiting for
   * its result, whose delayed jobs are then run at once (their next look finds the result, or one of them claims the
   * call in turn).
   */
  async releaseFirstCall(key: string, taskId: string): Promise<string[]> {
    return this.shared.releaseFirstCall(key, taskId).catch(() => []);
  }

  async stats(): Promise<Record<CacheLayer, LayerStats>> {
    await this.flushCounters();
    const counters = await this.shared.readCounts();
    const sharedEntries = await this.shared.entryCount();
    const disk = await this.diskUsage();
    const n = (layer: CacheLayer, field: string) => counters[`${layer}_${field}`] ?? 0;
    const base = (layer: CacheLayer) => ({ hits: n(layer, 'hits'), misses: n(layer, 'misses') });
    return {
      memory: {
        ...base('memory'),
        evictions: n('memory', 'evictions') + this.memoryEvictions,
        entries: this.memory.size,
        bytes: this.memory.calculatedSize,
      },
      redis: { ...base('redis'), evictions: n('redis', 'evictions'), entries: sharedEntries, bytes: null },
      disk: { ...base('disk'), evictions: n('disk', 'evictions'), entries: disk.entries, bytes: disk.bytes },
    };
  }

  /** Empties every layer, in every process; the counters start again. */
  async purge(): Promise<void> {
    this.memory.clear();
    this.pending.clear();
    await this.shared.purge();
    await rm(this.dir, { recursive: true, force: true });
  }

  /**
   * Deletes disk entries past 7 days, then the least recently used until the folder fits its size. Reads the folder
   * every DISK_SCAN_EVERY_MS, or sooner once what this process wrote since could have filled it (0 when it did not).
   */
  async sweepDisk(now = Date.now()): Promise<number> {
    const last = this.lastScan;
    const mayBeFull = last && last.bytes + this.writtenSinceScan > this.config.cache.diskMaxBytes;
    if (last && now - last.at < DISK_SCAN_EVERY_MS && !mayBeFull) return 0;
    this.writtenSinceScan = 0;
    const files = await this.diskFiles();
    let bytes = files.reduce((sum, f) => sum + f.size, 0);
    let evicted = 0;
    for (const file of files.sort((a, b) => a.atime - b.atime)) {
      if (now - file.mtime < DISK_TTL_MS && bytes <= this.config.cache.diskMaxBytes) break;
      await rm(file.path, { force: true });
      bytes -= file.size;
      evicted++;
    }
    if (evicted) this.count('disk', 'evictions', evicted);
    this.lastScan = { at: now, bytes };
    return evicted;
  }

  /**
   * Counters are summed in memory and written to the shared state once a second (and before statistics are read), not once per
   * lookup: a task's cache miss would otherwise cost three more writes on the worker's hot path.
   */
  private count(layer: CacheLayer, field: string, by = 1): void {
    const name = `${layer}_${field}`;
    this.pending.set(name, (this.pending.get(name) ?? 0) + by);
    this.flushTimer ??= setTimeout(() => void this.flushCounters(), COUNTER_FLUSH_MS).unref();
  }

  private async flushCounters(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pending.size === 0) return;
    const counts = [...this.pending];
    this.pending.clear();
    await this.shared.addCounts(counts).catch(() => undefined);
  }

  private diskPath(key: string): string {
    return join(this.dir, key.slice(0, 2), `${key}.json`);
  }

  private async readDisk(key: string): Promise<string | null> {
    const path = this.diskPath(key);
    try {
      const info = await stat(path);
      if (Date.now() - info.mtimeMs > DISK_TTL_MS) return null;
      const value = await readFile(path, 'utf8');
      const now = new Date();
      await utimes(path, now, info.mtime).catch(() => undefined); // read time orders the LRU
      return value;
    } catch {
      return null;
    }
  }

  private async writeDisk(key: string, value: string): Promise<void> {
    const path = this.diskPath(key);
    await mkdir(join(this.dir, key.slice(0, 2)), { recursive: true });
    await writeFile(path, value); // the size bound is enforced by sweepDisk, run by the reconciler
    this.writtenSinceScan += Buffer.byteLength(value);
  }

  private async diskFiles(): Promise<{ path: string; size: number; atime: number; mtime: number }[]> {
    const out: { path: string; size: number; atime: number; mtime: number }[] = [];
    let shards: string[];
    try {
      shards = await readdir(this.dir);
    } catch {
      return out;
    }
    for (const shard of shards) {
      for (const name of await readdir(join(this.dir, shard)).catch(() => [] as string[])) {
        const path = join(this.dir, shard, name);
        const info = await stat(path).catch(() => null);
        if (info?.isFile()) out.push({ path, size: info.size, atime: info.atimeMs, mtime: info.mtimeMs });
      }
    }
    return out;
  }

  private async diskUsage(): Promise<{ entries: number; bytes: number }> {
    const files = await this.diskFiles();
    return { entries: files.length, bytes: files.reduce((sum, f) => sum + f.size, 0) };
  }
}
