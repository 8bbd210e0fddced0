import { Injectable } from '@nestjs/common';
import { MetricsService } from '../metrics/metrics.service';
import { ProviderHealthService } from '../providers/provider-health.service';
import { MediaProvider, PollOutcome, ProviderError, StartOutcome } from '../providers/provider.port';

/** Runs provider calls and feeds their outcome to the shared health (success rate, latency, circuit) and metrics. */
@Injectable()
export class ProviderCalls {
  constructor(
    private readonly health: ProviderHealthService,
    private readonly metrics: MetricsService,
  ) {}

  async timed<T extends StartOutcome | PollOutcome>(
    provider: MediaProvider,
    call: () => Promise<T>,
  ): Promise<T & { latencyMs: number }> {
    const started = Date.now();
    try {
      const result = await call();
      const latencyMs = Date.now() - started;
      this.metrics.observeProviderCall(provider.name, 'ok', latencyMs);
      // A completed outcome is recorded when its outputs are stored, together with freeing the slot: one round trip
      // fewer.
      if (result.kind !== 'completed') await this.health.record(provider.name, true, latencyMs).catch(() => undefined);
      return { ...result, latencyMs };
    } catch (err) {
      this.metrics.observeProviderCall(provider.name, 'error', Date.now() - started);
      if (err instanceof ProviderError) this.metrics.countProviderError(provider.name, err.code);
      // Only the provider's own trouble counts against it, not a refused input or our cancel.
      if (err instanceof ProviderError && err.retryable) {
        await this.health.record(provider.name, false, Date.now() - started).catch(() => undefined);
      }
      throw err;
    }
  }
}
