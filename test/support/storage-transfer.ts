/*
 * Run by src/storage/storage-memory.spec.ts in a child process of its own (`node -r ./test/support/ts-register.js`),
 * so the resident memory it measures is the transfer's alone, not the test runner's: stores one provider output
 * (a URL) or a worker's file through StorageService, sampling process.memoryUsage.rss() as it goes, and prints one
 * JSON line with the stored file and the growth.
 */
import { LocalStorageBackend } from '../../src/storage/local-storage.backend';
import { S3StorageBackend } from '../../src/storage/s3-storage.backend';
import { StorageService } from '../../src/storage/storage.service';
import { OutputUrlGuard } from '../../src/security/url-guard';
import { ProviderArtifact } from '../../src/providers/provider.port';

interface TransferJob {
  backend:
    | { kind: 'local'; dir: string }
    | { kind: 's3'; endpoint: string; bucket: string; keys: { accessKeyId: string; secretAccessKey: string } };
  taskId: string;
  artifact: ProviderArtifact;
  /** Stored first, unmeasured: a worker that has already moved an output (its heap grown, the SDK loaded). */
  warmUp: ProviderArtifact;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]) as TransferJob;
  const backend =
    job.backend.kind === 'local'
      ? new LocalStorageBackend({ dir: job.backend.dir, secret: 'x'.repeat(32), ttlSeconds: 60, publicBaseUrl: '' })
      : new S3StorageBackend(
          {
            endpoint: job.backend.endpoint,
            region: 'us-east-1',
            bucket: job.backend.bucket,
            ...job.backend.keys,
            forcePathStyle: true,
          },
          60,
        );
  const guard = new OutputUrlGuard(true);
  const storage = new StorageService(backend, guard);
  // An output first, unmeasured, so what any first transfer costs once (the SDK's lazily required parts, V8's young
  // generation grown to its working size, sockets) is in the baseline: the growth measured is what the big one adds.
  await storage.saveArtifacts(`${job.taskId}-warm-up`, [job.warmUp]);
  await new Promise((resolve) => setTimeout(resolve, 200));
  global.gc?.();
  const base = process.memoryUsage();
  const start = base.rss;
  let peak = start;
  let at = process.memoryUsage();
  const timer = setInterval(() => {
    const rss = process.memoryUsage.rss();
    if (rss > peak) {
      peak = rss;
      at = process.memoryUsage();
    }
  }, 5);
  const began = Date.now();
  const [file] = await storage.saveArtifacts(job.taskId, [job.artifact]);
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage.rss());
  await guard.close();
  process.stdout.write(
    `${JSON.stringify({ file, base, at, startRss: start, peakRss: peak, growth: peak - start, ms: Date.now() - began })}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
