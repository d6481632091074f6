// dn_sgemm (through the addon) against a float64 naive product: every transpose combination, odd shapes
// on both sides of the small/blocked threshold and of the KC/MC/NC block edges, padded leading dimensions,
// alpha/beta, beta = 0 overwriting NaN, bit-identical results for 1 and 2 threads and for an output large enough to
// stream wherever it starts; the in-team form (dn_sgemm_serial, with its unpacked small-product path) on the
// attention's per-head shapes. Every suite runs at each SIMD level the machine has (AVX-512 14×32, AVX2 6×16,
// portable 4×16 micro-kernels): the same error bound for all.
import { expect, it } from 'vitest';
import { nativeFn, type Sgemm } from '../../src/native/loader.js';
import { Rng } from '../../src/engine/index.js';
import { describeEachSimdLevel } from '../helpers/simd.js';
import { setThreads } from './helpers.js';

interface Case {
  ta: number;
  tb: number;
  m: number;
  n: number;
  k: number;
  alpha: number;
  beta: number;
  pad: number;
  serial?: boolean;
}

function run(cs: Case, seed: number) {
  const sgemm = nativeFn<Sgemm>('sgemm');
  const rng = new Rng(seed);
  const { ta, tb, m, n, k, alpha, beta, pad } = cs;
  const [ar, ac] = ta ? [k, m] : [m, k];
  const [br, bc] = tb ? [n, k] : [k, n];
  const lda = ac + pad,
    ldb = bc + pad,
    ldc = n + pad;
  const a = Float32Array.from({ length: ar * lda }, () => rng.normal());
  const b = Float32Array.from({ length: br * ldb }, () => rng.normal());
  const c0 = Float32Array.from({ length: m * ldc }, () => rng.normal());
  const c = Float32Array.from(c0);
  sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, cs.serial ?? false);
  let worst = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++)
        s += (ta ? a[p * lda + i]! : a[i * lda + p]!) * (tb ? b[j * ldb + p]! : b[p * ldb + j]!);
      const want = alpha * s + (beta === 0 ? 0 : beta * c0[i * ldc + j]!);
      // float32 accumulation over k terms of size ~1: error grows like √k ulps.
      const err = Math.abs(c[i * ldc + j]! - want) / (1 + Math.sqrt(k));
      if (err > 1e-5) throw new Error(`C[${i},${j}] = ${c[i * ldc + j]} but naive = ${want} (${JSON.stringify(cs)})`);
      worst = Math.max(worst, err);
    }
    // The padding between rows of C is never written.
    for (let j = n; j < ldc; j++) expect(c[i * ldc + j]).toBe(c0[i * ldc + j]);
  }
  return { worst, c };
}

describeEachSimdLevel('dn_sgemm', () => {
  const shapes: Array<[number, number, number]> = [
    [1, 1, 1],
    [3, 5, 7],
    [13, 33, 17], // small path
    [37, 45, 29],
    [25, 67, 341],
    [183, 31, 13],
    [3, 4100, 30], // blocked: edges of MR/NR, KC (256), MC (168)
    [5, 2100, 1100], // B packed in two column blocks (n·k > 2M floats)
    // Short last row panels (AVX-512: 2 rows of a 4-row kernel, a full 8-row one, a full 4-row one after an MC block),
    // B tails under 16 columns and k tails off the 16-wide packing transposes; with 2 threads the column chunks share
    // one packed A.
    [128, 96, 300],
    [260, 70, 530],
    [172, 45, 283],
  ];
  for (const ta of [0, 1]) {
    for (const tb of [0, 1]) {
      it(`matches the naive product (transA=${ta}, transB=${tb})`, () => {
        let worst = 0;
        for (const [i, [m, n, k]] of shapes.entries()) {
          const alpha = i % 2 ? 0.75 : 1,
            beta = [0, 1, -0.5][i % 3]!;
          worst = Math.max(
            worst,
            run({ ta, tb, m, n, k, alpha, beta, pad: i % 2 ? 3 : 0 }, i + 10 * ta + 20 * tb).worst,
          );
        }
        expect(worst).toBeLessThan(1e-5);
      });
    }
  }

  it('matches the naive product in the in-team form on per-head shapes (all transposes)', () => {
    // dn_sgemm_serial takes the unpacked path where it applies (n a multiple of NR or B transposed, k <= KC).
    const small: Array<[number, number, number]> = [
      [64, 32, 256],
      [70, 64, 100],
      [13, 96, 200],
      [64, 256, 32],
      [29, 45, 64],
      [1, 32, 7],
      [15, 33, 256],
    ];
    let worst = 0;
    for (const ta of [0, 1]) {
      for (const tb of [0, 1]) {
        for (const [i, [m, n, k]] of small.entries()) {
          const cs = { ta, tb, m, n, k, alpha: 0.25, beta: 1, pad: i % 2, serial: true };
          worst = Math.max(worst, run(cs, 100 + i + 10 * ta + 20 * tb).worst);
        }
      }
    }
    expect(worst).toBeLessThan(1e-5);
  });

  it('overwrites NaN in C when beta = 0 and handles k = 0 (C = beta·C)', () => {
    const sgemm = nativeFn<Sgemm>('sgemm');
    const a = new Float32Array(64 * 64).fill(1),
      b = new Float32Array(64 * 64).fill(2);
    const c = new Float32Array(64 * 64).fill(NaN);
    sgemm(0, 0, 64, 64, 64, 1, a, 64, b, 64, 0, c, 64);
    expect(c.every((x) => x === 128)).toBe(true);
    // The blocked path stores its first k block instead of clearing C: edge tiles and later k blocks (k > 256) too.
    for (const [ta, tb] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const [m, n, k] = [301, 157, 700];
      const e = new Float32Array(m * n).fill(NaN);
      sgemm(
        ta,
        tb,
        m,
        n,
        k,
        1,
        new Float32Array(m * k).fill(0.5),
        ta ? m : k,
        new Float32Array(k * n).fill(2),
        tb ? k : n,
        0,
        e,
        n,
      );
      expect(e.every((x) => x === k)).toBe(true);
    }
    const d = new Float32Array([1, 2, 3, 4]);
    sgemm(0, 0, 2, 2, 0, 1, new Float32Array(0), 1, new Float32Array(0), 2, 0.5, d, 2);
    expect(Array.from(d)).toEqual([0.5, 1, 1.5, 2]);
  });

  it('adds a residual as it stores (dn_sgemm_add): the bits of copying it into C and accumulating', () => {
    // Blocked shapes with MR/NR edges and several k blocks, a small one and a k = 0 one (the copy paths).
    const sgemm = nativeFn<Sgemm>('sgemm');
    const rng = new Rng(77);
    for (const [ta, tb, m, n, k] of [
      [0, 1, 301, 157, 700],
      [0, 0, 130, 300, 256],
      [1, 0, 67, 45, 530],
      [0, 1, 5, 7, 3],
      [0, 0, 9, 11, 0],
    ] as const) {
      const lda = ta ? m : k,
        ldb = tb ? k : n,
        ldd = n + 2;
      const a = Float32Array.from({ length: Math.max(1, (ta ? k : m) * lda) }, () => rng.normal());
      const b = Float32Array.from({ length: Math.max(1, (tb ? n : k) * ldb) }, () => rng.normal());
      const d = Float32Array.from({ length: m * ldd }, () => rng.normal());
      const fused = new Float32Array(m * n).fill(NaN);
      sgemm(ta, tb, m, n, k, 0.5, a, lda, b, ldb, 0, fused, n, false, d, ldd);
      const copied = new Float32Array(m * n);
      for (let i = 0; i < m; i++) copied.set(d.subarray(i * ldd, i * ldd + n), i * n);
      sgemm(ta, tb, m, n, k, 0.5, a, lda, b, ldb, 1, copied, n);
      expect(Buffer.from(fused.buffer).equals(Buffer.from(copied.buffer))).toBe(true);
    }
    expect(() =>
      sgemm(
        0,
        0,
        2,
        2,
        2,
        1,
        new Float32Array(4),
        2,
        new Float32Array(4),
        2,
        1,
        new Float32Array(4),
        2,
        false,
        new Float32Array(4),
        2,
      ),
    ).toThrow(/beta = 0/);
  });

  it('gives the same bits with 1 and 2 threads', () => {
    // The second case splits its one row block's columns between the threads, which then share a packed A.
    for (const cs of [
      { ta: 0, tb: 1, m: 301, n: 157, k: 700, alpha: 1, beta: 0, pad: 0 },
      { ta: 1, tb: 0, m: 130, n: 300, k: 530, alpha: 0.5, beta: 1, pad: 1 },
    ]) {
      const two = run(cs, 5).c;
      const restore = setThreads(1);
      try {
        expect(Buffer.from(run(cs, 5).c.buffer).equals(Buffer.from(two.buffer))).toBe(true);
      } finally {
        restore();
      }
    }
  });

  it('gives a transposed A the bits of the same matrix untransposed (alpha = 1, 1 and 2 threads)', () => {
    // At AVX-512 op(A) = Aᵀ with alpha = 1 is read where it lies (elsewhere packed); the same op(A) given untransposed
    // is packed. Both sum each element in the same k order, so the bits agree: whole and short row panels (m = 173:
    // 12 × 14 + 5), several k blocks, a padded row stride, beta 0 and 1, and two threads splitting the columns.
    const sgemm = nativeFn<Sgemm>('sgemm');
    for (const [m, n, k, lda, beta] of [
      [173, 96, 530, 173, 0],
      [300, 64, 300, 307, 1],
      [42, 512, 257, 45, 1],
    ] as const) {
      const rng = new Rng(m + k);
      const at = Float32Array.from({ length: k * lda }, () => rng.normal());
      const a = new Float32Array(m * k);
      for (let p = 0; p < k; p++) for (let i = 0; i < m; i++) a[i * k + p] = at[p * lda + i]!;
      const b = Float32Array.from({ length: k * n }, () => rng.normal());
      const c0 = Float32Array.from({ length: m * n }, () => rng.normal());
      for (const threads of [1, 2]) {
        const restore = setThreads(threads);
        try {
          const inPlace = Float32Array.from(c0),
            packed = Float32Array.from(c0);
          sgemm(1, 0, m, n, k, 1, at, lda, b, n, beta, inPlace, n);
          sgemm(0, 0, m, n, k, 1, a, k, b, n, beta, packed, n);
          expect(Buffer.from(inPlace.buffer).equals(Buffer.from(packed.buffer))).toBe(true);
        } finally {
          restore();
        }
      }
    }
  });

  it('gives the same bits wherever C starts, 1 or 2 threads, for an output past the streaming size', () => {
    // m·n·4 = 8.6 MB, one k block, beta 0: the AVX-512 and AVX2 kernels stream the whole tiles of such a C when C is
    // 64-byte aligned (one of the 16 offsets below) and store edge tiles (m, n off the 14 × 32 or 6 × 16 grid) plainly.
    const sgemm = nativeFn<Sgemm>('sgemm');
    const rng = new Rng(31);
    const [m, n, k] = [520, 4112, 32];
    const a = Float32Array.from({ length: m * k }, () => rng.normal());
    const b = Float32Array.from({ length: n * k }, () => rng.normal());
    const space = new Float32Array(m * n + 32);
    let first: Buffer | undefined;
    for (const threads of [1, 2]) {
      const restore = setThreads(threads);
      try {
        for (let off = 0; off < 16; off++) {
          space.fill(NaN);
          const c = space.subarray(off, off + m * n);
          sgemm(0, 1, m, n, k, 1, a, k, b, k, 0, c, n);
          const bits = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
          if (!first) first = Buffer.from(bits);
          else expect(bits.equals(first)).toBe(true);
          // Nothing written outside C.
          expect(space.subarray(0, off).every(Number.isNaN)).toBe(true);
          expect(space.subarray(off + m * n).every(Number.isNaN)).toBe(true);
        }
      } finally {
        restore();
      }
    }
    // And those bits are the product (a sample of rows, all columns).
    const c = new Float32Array(first!.buffer, first!.byteOffset, m * n);
    for (let i = 0; i < m; i += 37) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[i * k + p]! * b[j * k + p]!;
        expect(Math.abs(c[i * n + j]! - s) / (1 + Math.sqrt(k))).toBeLessThan(1e-5);
      }
    }
  });

  it('rejects arrays shorter than the shapes need', () => {
    const sgemm = nativeFn<Sgemm>('sgemm');
    expect(() =>
      sgemm(0, 0, 4, 4, 4, 1, new Float32Array(15), 4, new Float32Array(16), 4, 0, new Float32Array(16), 4),
    ).toThrow(/a is too short/);
    expect(() =>
      sgemm(0, 0, 4, 4, 4, 1, new Float32Array(16), 4, new Float32Array(16), 4, 0, new Float32Array(16), 3),
    ).toThrow(/ldc/);
  });
});
