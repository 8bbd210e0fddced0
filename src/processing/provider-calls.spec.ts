import { fake } from '../../test/support/processing-fakes';
import { MetricsService } from '../metrics/metrics.service';
import { ProviderHealthService } from '../providers/provider-health.service';
import { MediaProvider, ProviderError } from '../providers/provider.port';
import { ProviderCalls } from './provider-calls';

function setup() {
  const health = { record: jest.fn(async () => undefined) };
  const metrics = { observeProviderCall: jest.fn(), countProviderError: jest.fn() };
  const calls = new ProviderCalls(fake<ProviderHealthService>(health), fake<MetricsService>(metrics));
  const provider = fake<MediaProvider>({ name: 'runway' });
  return { health, metrics, calls, provider };
}

describe('ProviderCalls', () => {
  it('records a successful call in health and metrics, and hands the latency back', async () => {
    const { health, metrics, calls, provider } = setup();
    const outcome = await calls.timed(provider, async () => ({
      kind: 'submitted' as const,
      job: { id: 'j' },
      pollAfterMs: 500,
    }));
    expect(outcome).toMatchObject({ kind: 'submitted', job: { id: 'j' } });
    expect(outcome.latencyMs).toBeGreaterThanOrEqual(0);
    expect(health.record).toHaveBeenCalledWith('runway', true, outcome.latencyMs);
    expect(metrics.observeProviderCall).toHaveBeenCalledWith('runway', 'ok', outcome.latencyMs);
  });

  it('leaves a completed call to be recorded with its slot, when its outputs are stored', async () => {
    const { health, metrics, calls, provider } = setup();
    await calls.timed(provider, async () => ({ kind: 'completed' as const, output: { artifacts: [] } }));
    expect(health.record).not.toHaveBeenCalled();
    expect(metrics.observeProviderCall).toHaveBeenCalledWith('runway', 'ok', expect.any(Number));
  });

  it("counts only the provider's own trouble against its health, and every error in metrics", async () => {
    const { health, metrics, calls, provider } = setup();
    const outage = ProviderError.transient('provider_unavailable', '503');
    await expect(calls.timed(provider, () => Promise.reject(outage))).rejects.toBe(outage);
    expect(health.record).toHaveBeenCalledWith('runway', false, expect.any(Number));
    const refused = ProviderError.permanent('input_invalid', 'prompt: too long');
    await expect(calls.timed(provider, () => Promise.reject(refused))).rejects.toBe(refused);
    expect(health.record).toHaveBeenCalledTimes(1);
    expect(metrics.countProviderError.mock.calls).toEqual([
      ['runway', 'provider_unavailable'],
      ['runway', 'input_invalid'],
    ]);
    expect(metrics.observeProviderCall).toHaveBeenCalledWith('runway', 'error', expect.any(Number));
  });
});
