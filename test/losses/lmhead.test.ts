// The fused LM head: native (row chunks) against the float64 reference and against computeLoss on
// explicit logits; weight/hidden gradients; accumulation into gradWeight; chunk sizes; errors.
import { describe, expect, it } from 'vitest';
import { computeLoss, lmHeadLoss, type LmHeadLossInput } from '../../losses/index.js';
import { DistillError } from '../../src/core/errors.js';
import { expectClose, expectCloseScalar, F32, makeCase, rng } from './helpers.js';

function setup(n: number, d: number, v: number, k: number, seed: number, masked: number[] = []) {
  const c = makeCase(n, v, k, seed, 6, masked);
  const r = rng(seed + 100);
  const hidden = Float32Array.from({ length: n * d }, () => (r() - 0.5) * 2);
  const weight = Float32Array.from({ length: v * d }, () => (r() - 0.5) * 2);
  return { c, hidden, weight };
}

describe('lmHeadLoss', () => {
  const { c, hidden, weight } = setup(5, 16, 101, 5, 71, [2]);
  const base: LmHeadLossInput = {
    hidden,
    weight,
    n: 5,
    dModel: 16,
    vocabSize: 101,
    labels: c.labels,
    teacher: c.teacher,
    kind: 'forward-kl',
    temperature: 2,
    hardWeight: 0.3,
    softWeight: 0.7,
    chunkSize: 2,
  };

  for (const [kind, support, temperature] of [
    ['forward-kl', 'renormalize', 2],
    ['jsd', 'bucket', 1],
    ['reverse-kl', 'renormalize', 1.5],
    ['tvd', 'renormalize', 1],
  ] as const) {
    it(`cpu matches the float64 reference: ${kind} / ${support} / T=${temperature}`, () => {
      const input = { ...base, kind, support, temperature };
      const want = lmHeadLoss({ ...input, backend: 'reference' });
      const got = lmHeadLoss(input);
      for (const key of ['loss', 'hardLoss', 'softLoss'] as const)
        expectCloseScalar(key, got[key], want[key], 1e-5, 1e-7);
      expect(got.agreement).toBe(want.agreement);
      expect(got.rows).toBe(4);
      expectClose('gradHidden', got.gradHidden, want.gradHidden, F32);
      expectClose('gradWeight', got.gradWeight, want.gradWeight, F32);
    });
  }

  it('equals hardWeight·ce + softWeight·soft from computeLoss on the explicit logits', () => {
    const logits = new Float32Array(5 * 101);
    for (let r = 0; r < 5; r++)
      for (let v = 0; v < 101; v++) {
        let s = 0;
        for (let j = 0; j < 16; j++) s += hidden[r * 16 + j]! * weight[v * 16 + j]!;
        logits[r * 101 + v] = s;
      }
    const ce = computeLoss({ kind: 'ce', logits, vocabSize: 101, labels: c.labels });
    const soft = computeLoss({
      kind: 'forward-kl',
      temperature: 2,
      logits,
      vocabSize: 101,
      labels: c.labels,
      teacher: c.teacher,
    });
    const got = lmHeadLoss(base);
    expectCloseScalar('hardLoss', got.hardLoss, ce.loss, 1e-5);
    expectCloseScalar('softLoss', got.softLoss, soft.loss, 1e-5);
    expectCloseScalar('loss', got.loss, 0.3 * ce.loss + 0.7 * soft.loss, 1e-5);
    expect(got.agreement).toBe(soft.agreement);
    // dHidden = dlogits · W with dlogits = 0.3·dce + 0.7·dsoft
    const dl = ce.grad.map((g, i) => 0.3 * g + 0.7 * soft.grad[i]!);
    const gh = new Float64Array(5 * 16);
    for (let r = 0; r < 5; r++)
      for (let v = 0; v < 101; v++)
        for (let j = 0; j < 16; j++) gh[r * 16 + j] += dl[r * 101 + v]! * weight[v * 16 + j]!;
    expectClose('gradHidden', got.gradHidden, gh, F32);
    expect(got.gradHidden.subarray(2 * 16, 3 * 16).every((x) => x === 0)).toBe(true);
  });

  it('gives the same answer for every chunk size and accumulates into gradWeight', () => {
    const one = lmHeadLoss({ ...base, chunkSize: 1 });
    for (const chunkSize of [3, 5, 64]) {
      const other = lmHeadLoss({ ...base, chunkSize });
      expectCloseScalar(`loss chunk ${chunkSize}`, other.loss, one.loss, 1e-6);
      expectClose(`gradWeight chunk ${chunkSize}`, other.gradWeight, one.gradWeight, F32);
    }
    const acc = Float32Array.from(one.gradWeight);
    const twice = lmHeadLoss({ ...base, gradWeight: acc });
    expect(twice.gradWeight).toBe(acc);
    expectClose(
      'accumulated gradWeight',
      acc,
      one.gradWeight.map((x) => 2 * x),
      F32,
    );
  });

  it('ce only (no teacher) and soft only (no labels)', () => {
    const hardOnly = lmHeadLoss({ ...base, teacher: undefined, kind: 'ce', softWeight: 0, hardWeight: 1 });
    const want = lmHeadLoss({
      ...base,
      teacher: undefined,
      kind: 'ce',
      softWeight: 0,
      hardWeight: 1,
      backend: 'reference',
    });
    expectCloseScalar('ce only', hardOnly.loss, want.loss, 1e-5);
    expect(hardOnly.agreement).toBe(0);
    const softOnly = lmHeadLoss({ ...base, labels: undefined, hardWeight: 0, softWeight: 1 });
    const wantSoft = lmHeadLoss({ ...base, labels: undefined, hardWeight: 0, softWeight: 1, backend: 'reference' });
    expectCloseScalar('soft only', softOnly.loss, wantSoft.loss, 1e-5);
    expect(softOnly.rows).toBe(5);
  });

  it('a real vocabulary (V = 128256, N = 3, d = 8) against computeLoss on explicit logits', () => {
    const big = setup(3, 8, 128256, 64, 73);
    const logits = new Float32Array(3 * 128256);
    for (let r = 0; r < 3; r++)
      for (let v = 0; v < 128256; v++) {
        let s = 0;
        for (let j = 0; j < 8; j++) s += big.hidden[r * 8 + j]! * big.weight[v * 8 + j]!;
        logits[r * 128256 + v] = s;
      }
    const soft = computeLoss({
      kind: 'jsd',
      logits,
      vocabSize: 128256,
      teacher: big.c.teacher,
      labels: big.c.labels,
      backend: 'reference',
    });
    const got = lmHeadLoss({
      hidden: big.hidden,
      weight: big.weight,
      n: 3,
      dModel: 8,
      vocabSize: 128256,
      labels: big.c.labels,
      teacher: big.c.teacher,
      kind: 'jsd',
      hardWeight: 0,
      softWeight: 1,
      chunkSize: 2,
    });
    expectCloseScalar('loss', got.loss, soft.loss, 1e-4, 1e-7);
  });

  it('an empty batch (n = 0) leaves gradWeight untouched', () => {
    const gw = new Float32Array(101 * 16).fill(0.5);
    const r = lmHeadLoss({
      ...base,
      hidden: new Float32Array(0),
      n: 0,
      labels: new Int32Array(0),
      teacher: { ids: new Int32Array(0), logprobs: new Float32Array(0), k: 5 },
      gradWeight: gw,
    });
    expect(r).toMatchObject({ loss: 0, rows: 0, agreement: 0 });
    expect(r.gradHidden.length).toBe(0);
    expect(gw.every((x) => x === 0.5)).toBe(true);
  });

  it('errors: wrong shapes, missing labels, a non-finite logit names its global row', () => {
    expect(() => lmHeadLoss({ ...base, hidden: hidden.subarray(1) })).toThrow(/hidden has the wrong shape/);
    expect(() => lmHeadLoss({ ...base, labels: undefined })).toThrow(/no labels/);
    const h = hidden.slice();
    h[4 * 16 + 3] = NaN;
    let err: unknown;
    try {
      lmHeadLoss({ ...base, hidden: h, chunkSize: 2 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DistillError);
    expect((err as DistillError).code).toBe('E_NON_FINITE');
    expect((err as DistillError).message).toContain('row 4, column 0');
  });
});
