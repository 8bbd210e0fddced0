import { Global, Module } from '@nestjs/common';
import { ProvidersModule } from '../providers/providers.module';
import { MetricsController } from './metrics.controller';
import { MetricsTokenGuard } from './metrics-token.guard';
import { MetricsService } from './metrics.service';

/** Prometheus metrics, in every role (each process serves its own): global so any module can feed them. */
@Global()
@Module({
  imports: [ProvidersModule],
  controllers: [MetricsController],
  providers: [MetricsService, MetricsTokenGuard],
  exports: [MetricsService],
})
export class MetricsModule {}
