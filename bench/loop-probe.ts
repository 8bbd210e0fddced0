/**
 * Loaded into a platform process under a benchmark (BENCH_NODE_ARGS="--require ./dist/bench/loop-probe.js"): when the
 * process exits it writes to stderr how long its event loop was held up (perf_hooks.monitorEventLoopDelay, 1 ms
 * resolution) and its garbage collections (count, total and longest pause), the stalls a request's latency shares.
 */
import { writeSync } from 'node:fs';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
const gc = { count: 0, totalMs: 0, maxMs: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gc.count++;
    gc.totalMs += entry.duration;
    gc.maxMs = Math.max(gc.maxMs, entry.duration);
  }
}).observe({ entryTypes: ['gc'] });

process.on('exit', () => {
  const ms = (ns: number): string => (ns / 1e6).toFixed(1);
  writeSync(
    2,
    `[loop-probe ${process.pid}] event loop delay ms: p50 ${ms(delay.percentile(50))} p99 ${ms(delay.percentile(99))} ` +
      `max ${ms(delay.max)}; gc: ${gc.count} pauses, ${gc.totalMs.toFixed(0)} ms total, longest ${gc.maxMs.toFixed(1)} ms\n`,
  );
});
