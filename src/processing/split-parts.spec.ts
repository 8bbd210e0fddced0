import { slices } from './split-parts';

describe('slices', () => {
  it('cuts a list into contiguous parts, in order, whose sizes differ by one at most', () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i);
    const parts = slices(hundred, 3);
    expect(parts.map((p) => p.length)).toEqual([34, 33, 33]);
    expect(parts.flat()).toEqual(hundred);
    expect(slices([1, 2, 3, 4, 5, 6, 7], 3)).toEqual([
      [1, 2, 3],
      [4, 5],
      [6, 7],
    ]);
    expect(slices([1, 2, 3, 4], 2)).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });

  it('balances the parts by weight, never leaving one empty', () => {
    // 50 one-second clips then 50 of a minute: equal counts would put nearly all the work in the last two parts.
    const clips = [...Array.from({ length: 50 }, () => 1), ...Array.from({ length: 50 }, () => 60)];
    const parts = slices(clips, 3, (s) => s);
    const work = parts.map((p) => p.reduce((a, b) => a + b, 0));
    expect(parts.flat()).toEqual(clips);
    expect(Math.max(...work) - Math.min(...work)).toBeLessThanOrEqual(120);
    // One heavy item first or last: the cuts still leave an item for every part.
    expect(slices([100, 1, 1], 3, (s) => s)).toEqual([[100], [1], [1]]);
    expect(slices([1, 1, 100], 3, (s) => s)).toEqual([[1], [1], [100]]);
    expect(slices([0, 0, 0, 0], 2, (s) => s).map((p) => p.length)).toEqual([1, 3]);
  });
});
