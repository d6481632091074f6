// Assertions over whole caches read back with dumpCache (kept apart from cache.ts, which benchmarks import too).
import { expect } from 'vitest';
import type { CacheDump } from './cache.js';

/** Two caches hold exactly the same rows: (seq, pos) order, top-k ids, log-probabilities and tails. */
export function expectIdenticalCache(got: CacheDump, want: CacheDump): void {
  expect(got.rows).toBe(want.rows);
  expect(got.seq).toEqual(want.seq);
  expect(got.pos).toEqual(want.pos);
  expect(got.ids).toEqual(want.ids);
  expect(got.logp).toEqual(want.logp);
  expect(got.tail).toEqual(want.tail);
}
