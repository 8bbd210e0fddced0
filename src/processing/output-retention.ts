import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { StorageService } from '../storage/storage.service';
import { TasksRepository } from '../tasks/tasks.repository';
import { UploadsService } from '../uploads/uploads.service';

/** Tasks (and uploads) handled per sweep; the next sweep takes the rest. */
const BATCH = 200;
const DAY_MS = 86_400_000;

export interface RetentionReport {
  /** Tasks whose files were deleted and that were marked `output.expired_at`. */
  tasksExpired: number;
  uploadsDeleted: number;
  /** Stored files deleted (task outputs and uploads) and their bytes. */
  files: number;
  bytes: number;
}

/**
 * OUTPUT_RETENTION_DAYS: stored task outputs and uploads older than that are deleted from storage. A task keeps its
 * output (names, sizes, hashes) with `expired_at` added, and its file links answer 410. Runs within the reconciler's
 * pass on the maintenance queue, so one process sweeps at a time whatever the number of workers.
 */
@Injectable()
export class OutputRetention {
  private readonly logger = new Logger('Retention');

  constructor(
    private readonly config: AppConfig,
    private readonly tasks: TasksRepository,
    private readonly uploads: UploadsService,
    private readonly storage: StorageService,
    private readonly metrics: MetricsService,
  ) {}

  async sweep(now = new Date()): Promise<RetentionReport> {
    const report: RetentionReport = { tasksExpired: 0, uploadsDeleted: 0, files: 0, bytes: 0 };
    const days = this.config.storage.retentionDays;
    if (days <= 0) return report;
    const before = new Date(now.getTime() - days * DAY_MS);
    let files = 0;
    let bytes = 0;
    for (const task of await this.tasks.findKeptOutputsBefore(before, BATCH)) {
      const stored = storedFilesOf(task.output);
      try {
        // Files first, then the mark: a crash between the two deletes them again (nothing to do) next time.
        for (const file of stored) await this.storage.delete(file.key);
      } catch (err) {
        this.logger.warn({ taskId: task.id }, `expired outputs not deleted: ${(err as Error).message}`);
        continue;
      }
      if (await this.tasks.markOutputExpired(task.id, now)) {
        report.tasksExpired++;
        files += stored.length;
        bytes += stored.reduce((sum, file) => sum + file.size, 0);
      }
    }
    this.metrics.countRetention('task_output', files, bytes);
    const uploads = await this.uploads.sweepCreatedBefore(before);
    this.metrics.countRetention('upload', uploads.files, uploads.bytes);
    report.uploadsDeleted = uploads.files;
    report.files = files + uploads.files;
    report.bytes = bytes + uploads.bytes;
    if (report.files) this.logger.log(report, `deleted stored files older than ${days} days`);
    return report;
  }
}

/** The stored files a task's output lists (`output.files[]`), as far as they are well formed. */
function storedFilesOf(output: Record<string, unknown>): { key: string; size: number }[] {
  const files = Array.isArray(output.files) ? (output.files as unknown[]) : [];
  return files.flatMap((file) => {
    const { key, size_bytes: size } = (file ?? {}) as { key?: unknown; size_bytes?: unknown };
    return typeof key === 'string' ? [{ key, size: typeof size === 'number' ? size : 0 }] : [];
  });
}
