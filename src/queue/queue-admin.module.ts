import { Module } from '@nestjs/common';
import { QueueAdminController } from './queue-admin.controller';
import { QueueAdminService } from './queue-admin.service';

/** The admin HTTP face of the queues (stats, clean, pause, resume), mounted by the API role only. */
@Module({ controllers: [QueueAdminController], providers: [QueueAdminService] })
export class QueueAdminHttpModule {}
