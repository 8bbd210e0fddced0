import { AppConfig } from '../config/app-config';
import { availableParallelism } from 'node:os';
import { CpuSlots } from './cpu-slots';

/** A step that runs until `finish()` is called, counting how many run at once. */
function meter() {
  let running = 0;
  let most = 0;
  const ends: (() => void)[] = [];
  const step = () =>
    new Promise<void>((resolve) => {
      most = Math.max(most, ++running);
      ends.push(() => {
        running--;
        resolve();
      });
    });
  return { step, finish: () => ends.shift()!(), most: () => most, running: () => running };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('CpuSlots', () => {
  it('runs at most `size` steps at once, the others in arrival order as turns free', async () => {
    const slots = new CpuSlots(2);
    const m = meter();
    const order: number[] = [];
    const runs = [1, 2, 3, 4].map((n) => slots.run(() => m.step().then(() => order.push(n))));
    await tick();
    expect(m.running()).toBe(2);
    expect(slots.load).toEqual({ running: 2, waiting: 2 });
    m.finish();
    await tick();
    expect(m.running()).toBe(2);
    for (let left = 3; left > 0; left--) {
      m.finish();
      await tick();
    }
    await Promise.all(runs);
    expect(m.most()).toBe(2);
    expect(order).toEqual([1, 2, 3, 4]);
    expect(slots.load).toEqual({ running: 0, waiting: 0 });
  });

  it('frees the turn of a step that fails', async () => {
    const slots = new CpuSlots(1);
    await expect(slots.run(() => Promise.reject(new Error('bad image')))).rejects.toThrow('bad image');
    await expect(slots.run(() => Promise.resolve('next'))).resolves.toBe('next');
  });

  it('takes a step stopped while it waits out of the line, with the stop reason, and never runs it', async () => {
    const slots = new CpuSlots(1);
    const m = meter();
    const first = slots.run(() => m.step());
    const stop = new AbortController();
    let ran = false;
    const waiting = slots.run(async () => void (ran = true), stop.signal);
    await tick();
    stop.abort(new Error('cancelled'));
    await expect(waiting).rejects.toThrow('cancelled');
    expect(slots.load).toEqual({ running: 1, waiting: 0 });
    m.finish();
    await first;
    expect(ran).toBe(false);
    expect(slots.load).toEqual({ running: 0, waiting: 0 });
    await expect(slots.run(async () => 1, AbortSignal.abort(new Error('late')))).rejects.toThrow('late');
  });

  it('is sized by LOCAL_CPU_CONCURRENCY, the machine’s cores when unset', () => {
    expect(AppConfig.fromEnv({}).localCpuConcurrency).toBe(availableParallelism());
    expect(AppConfig.fromEnv({ LOCAL_CPU_CONCURRENCY: '3' }).localCpuConcurrency).toBe(3);
    expect(() => AppConfig.fromEnv({ LOCAL_CPU_CONCURRENCY: '0' })).toThrow(/LOCAL_CPU_CONCURRENCY/);
    expect(() => new CpuSlots(0)).toThrow(/positive integer/);
  });
});
