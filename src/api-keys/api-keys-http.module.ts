import { Module } from '@nestjs/common';
import { ApiKeysController } from './api-keys.controller';
import { ApiKeysModule } from './api-keys.module';

/** The admin endpoints of API keys, mounted by the API role only. */
@Module({
  imports: [ApiKeysModule],
  controllers: [ApiKeysController],
})
export class ApiKeysHttpModule {}
