import { Module } from '@nestjs/common';
import { UploadsController } from './uploads.controller';

/** The HTTP face of uploads, mounted by the API role only (UploadsModule is global). */
@Module({ controllers: [UploadsController] })
export class UploadsHttpModule {}
