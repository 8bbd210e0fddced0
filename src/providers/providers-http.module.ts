import { Module } from '@nestjs/common';
import { TasksModule } from '../tasks/tasks.module';
import { ProviderCallbacksController } from './provider-callbacks.controller';
import { ProvidersController } from './providers.controller';

/** The HTTP face of providers (their list with live health, and their "job ended" callbacks), API role only. */
@Module({
  imports: [TasksModule],
  controllers: [ProvidersController, ProviderCallbacksController],
})
export class ProvidersHttpModule {}
