import { slices } from './fan-out';

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
});
