// Test helpers for the loss suites: seeded data (student logits, teacher top-k from full teacher
// logits), and comparisons that print the largest difference and the first mismatches.
import { expect } from 'vitest';

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

export interface Case {
  n: number;
  v: number;
  k: number;
  logits: Float32Array;
  /** The teacher's full logits (N × V) the top-k was cut from. */
  teacherLogits: Float64Array;
  teacher: { ids: Int32Array; logprobs: Float32Array; k: number };
  labels: Int32Array;
}

export function logSoftmax(row: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) m = Math.max(m, row[i]!);
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i]! - m);
  const lse = m + Math.log(s);
  return Float64Array.from(row, (x) => x - lse);
}

/** Random student logits and a teacher top-k (sorted by probability, normalized over the full V). */
export function makeCase(n: number, v: number, k: number, seed = 1, spread = 6, masked: number[] = []): Case {
  const r = rng(seed);
  const logits = Float32Array.from({ length: n * v }, () => (r() - 0.5) * spread);
  const teacherLogits = Float64Array.from({ length: n * v }, () => (r() - 0.5) * spread);
  const ids = new Int32Array(n * k);
  const logprobs = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    const lp = logSoftmax(teacherLogits.subarray(i * v, (i + 1) * v));
    const order = Array.from({ length: v }, (_, j) => j).sort((a, b) => lp[b]! - lp[a]!);
    for (let j = 0; j < k; j++) {
      ids[i * k + j] = order[j]!;
      logprobs[i * k + j] = lp[order[j]!]!;
    }
  }
  const labels = Int32Array.from({ length: n }, (_, i) => (masked.includes(i) ? -100 : Math.floor(r() * v)));
  return { n, v, k, logits, teacherLogits, teacher: { ids, logprobs, k }, labels };
}

export interface Tolerance {
  /** absolute tolerance as a fraction of the largest |expected| value */
  atolRel: number;
  atol: number;
  rtol: number;
}

export const F32: Tolerance = { atolRel: 2e-5, atol: 1e-7, rtol: 1e-4 };
export const BF16: Tolerance = { atolRel: 2e-2, atol: 1e-5, rtol: 2e-2 };

/** Fails with the largest difference and the first five mismatches (index, expected, got). */
export function expectClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  let maxAbs = 0;
  for (let i = 0; i < want.length; i++) maxAbs = Math.max(maxAbs, Math.abs(want[i]!));
  const atol = tol.atol + tol.atolRel * maxAbs;
  let worst = 0;
  let worstAt = -1;
  const bad: string[] = [];
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    const ok = d <= atol + tol.rtol * Math.abs(want[i]!);
    if (!(d <= worst) || Number.isNaN(d)) {
      worst = Number.isNaN(d) ? Infinity : d;
      worstAt = i;
    }
    if (!ok && bad.length < 5) bad.push(`[${i}] want ${want[i]} got ${got[i]}`);
  }
  if (bad.length) {
    expect.fail(
      `${what}: max |diff| ${worst} at [${worstAt}] (atol ${atol.toExponential(2)}, rtol ${tol.rtol}); first mismatches: ${bad.join('; ')}`,
    );
  }
}

export function expectCloseScalar(what: string, got: number, want: number, rtol: number, atol = 1e-9): void {
  const d = Math.abs(got - want);
  if (!(d <= atol + rtol * Math.abs(want)))
    expect.fail(`${what}: want ${want}, got ${got} (|diff| ${d}, rtol ${rtol})`);
}

/** Central finite differences of f at x, one coordinate at a time with step h (x is restored). */
export function centralDifferences(f: (x: Float64Array) => number, x: ArrayLike<number>, h: number): Float64Array {
  const z = Float64Array.from(x);
  const fd = new Float64Array(z.length);
  for (let i = 0; i < z.length; i++) {
    const xi = z[i] ?? 0;
    z[i] = xi + h;
    const up = f(z);
    z[i] = xi - h;
    const down = f(z);
    z[i] = xi;
    fd[i] = (up - down) / (2 * h);
  }
  return fd;
}
