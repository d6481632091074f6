// Checked element access for code that indexes typed arrays by computed offsets (the float64 references,
// metrics): an out-of-range index throws RangeError (a bug) instead of reading undefined and turning into NaN.

/** a[i], or a RangeError when i is outside the array. */
export function at(a: ArrayLike<number>, i: number): number {
  const v = a[i];
  if (v === undefined) throw new RangeError(`index ${i} outside [0, ${a.length})`);
  return v;
}

/** a[i] += v, checked. */
export function add(a: { [i: number]: number; readonly length: number }, i: number, v: number): void {
  a[i] = at(a, i) + v;
}
