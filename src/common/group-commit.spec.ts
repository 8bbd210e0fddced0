import { GroupCommit } from './group-commit';

/** A flush whose calls the test releases by hand. */
function controlledFlush() {
  const calls: { key: string; items: number[]; release: (err?: Error) => void }[] = [];
  const flush = (key: string, items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      calls.push({
        key,
        items,
        release: (err) => (err ? reject(err) : resolve(items.map((n) => `${key}:${n}`))),
      });
    });
  return { calls, flush };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('GroupCommit', () => {
  it('sends the first item alone and batches those that arrive while it is in flight, answering each its own', async () => {
    const { calls, flush } = controlledFlush();
    const commit = new GroupCommit(flush);
    const first = commit.submit('a', 1);
    await tick();
    expect(calls.map((c) => c.items)).toEqual([[1]]);
    const later = [2, 3, 4].map((n) => commit.submit('a', n));
    await tick();
    expect(calls).toHaveLength(1); // waiting for the first write to return
    calls[0].release();
    expect(await first).toBe('a:1');
    await tick();
    expect(calls.map((c) => c.items)).toEqual([[1], [2, 3, 4]]);
    calls[1].release();
    expect(await Promise.all(later)).toEqual(['a:2', 'a:3', 'a:4']);
  });

  it('keeps lanes apart, caps the batch size, and rejects only the batch whose write failed', async () => {
    const { calls, flush } = controlledFlush();
    const commit = new GroupCommit(flush, 2);
    const a1 = commit.submit('a', 1);
    const b1 = commit.submit('b', 1);
    await tick();
    expect(calls.map((c) => [c.key, c.items])).toEqual([
      ['a', [1]],
      ['b', [1]],
    ]);
    const rest = [2, 3, 4].map((n) => commit.submit('a', n));
    calls[0].release(new Error('connection lost'));
    calls[1].release();
    await expect(a1).rejects.toThrow('connection lost');
    expect(await b1).toBe('b:1');
    await tick();
    expect(calls[2].items).toEqual([2, 3]);
    calls[2].release();
    await tick();
    expect(calls[3].items).toEqual([4]);
    calls[3].release();
    expect(await Promise.all(rest)).toEqual(['a:2', 'a:3', 'a:4']);
  });
});

describe('GroupCommit with parallel writes', () => {
  it('sends items alone while fewer than `parallel` writes are in flight, then batches the rest', async () => {
    const { calls, flush } = controlledFlush();
    const commit = new GroupCommit(flush, { parallel: 2 });
    const first = [1, 2].map((n) => commit.submit('a', n));
    await tick();
    expect(calls.map((c) => c.items)).toEqual([[1], [2]]);
    const later = [3, 4, 5].map((n) => commit.submit('a', n));
    await tick();
    expect(calls).toHaveLength(2); // both writes in flight: the rest wait
    calls[1].release();
    expect(await first[1]).toBe('a:2');
    await tick();
    expect(calls.map((c) => c.items)).toEqual([[1], [2], [3, 4, 5]]);
    calls[0].release();
    calls[2].release();
    expect(await Promise.all([first[0], ...later])).toEqual(['a:1', 'a:3', 'a:4', 'a:5']);
    // The lane is gone once idle: the next item goes at once again.
    const next = commit.submit('a', 6);
    await tick();
    expect(calls[3].items).toEqual([6]);
    calls[3].release();
    expect(await next).toBe('a:6');
  });
});

describe('GroupCommit isolating failures', () => {
  /** A flush that refuses every batch holding 3, as a table refuses one bad row, and answers the rest. */
  const refusing3 = jest.fn(async (key: string, items: number[]) => {
    await tick();
    if (items.includes(3)) throw new Error('row 3 refused');
    return items.map((n) => `${key}:${n}`);
  });

  it('writes each item of a failed batch alone, so only the item whose own write fails is rejected', async () => {
    refusing3.mockClear();
    const commit = new GroupCommit(refusing3, { isolateFailures: true });
    const outcomes = Promise.allSettled([1, 2, 3, 4].map((n) => commit.submit('a', n)));
    const settled = await outcomes;
    expect(settled.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message))).toEqual([
      'a:1',
      'a:2',
      'row 3 refused',
      'a:4',
    ]);
    // 1 alone, then [2, 3, 4] together (refused), then each of them alone.
    expect(refusing3.mock.calls.map(([, items]) => items)).toEqual([[1], [2, 3, 4], [2], [3], [4]]);
  });

  it('rejects the whole batch without the option', async () => {
    refusing3.mockClear();
    const commit = new GroupCommit(refusing3);
    const settled = await Promise.allSettled([1, 2, 3, 4].map((n) => commit.submit('a', n)));
    expect(settled.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected']);
  });
});
