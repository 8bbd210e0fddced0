import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, In, LessThan, LessThanOrEqual, Repository } from 'typeorm';
import { UploadEntity } from './entities/upload.entity';

/** The `uploads` table. */
@Injectable()
export class UploadsRepository {
  private readonly repo: Repository<UploadEntity>;

  constructor(@InjectDataSource() dataSource: DataSource) {
    this.repo = dataSource.getRepository(UploadEntity);
  }

  async insert(upload: UploadEntity): Promise<void> {
    await this.repo.insert(upload);
  }

  findById(id: string): Promise<UploadEntity | null> {
    return this.repo.findOneBy({ id });
  }

  findByIds(ids: string[]): Promise<UploadEntity[]> {
    return ids.length === 0 ? Promise.resolve([]) : this.repo.findBy({ id: In(ids) });
  }

  /** Uploads whose time is up, oldest first, at most `limit`. */
  findExpired(now: Date, limit: number): Promise<UploadEntity[]> {
    return this.repo.find({ where: { expiresAt: LessThanOrEqual(now) }, order: { expiresAt: 'ASC' }, take: limit });
  }

  /** Uploads made before `before` (OUTPUT_RETENTION_DAYS), oldest first, at most `limit`. */
  findCreatedBefore(before: Date, limit: number): Promise<UploadEntity[]> {
    return this.repo.find({ where: { createdAt: LessThan(before) }, order: { createdAt: 'ASC' }, take: limit });
  }

  async delete(id: string): Promise<void> {
    await this.repo.delete({ id });
  }
}
