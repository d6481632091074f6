// Graph surgery: the appended LogSoftmax/TopK/tail outputs equal the top-k taken in TypeScript
// (float64) from the full logits of the unmodified model, on the fixture teacher and on V = 32000.
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import {
  appendTopK,
  buildSyntheticTeacher,
  checkTeacherContract,
  createSession,
  decodeModel,
  int64Ids,
  runTopK,
} from '../../src/teacher/index.js';

const FIXTURE = 'fixtures/teacher/model.onnx';

/** Reference: log_softmax(logits/T) in float64, then the k largest (ties broken by lower id). */
function referenceTopK(logits: Float32Array, V: number, k: number, temperature: number) {
  const n = logits.length / V;
  const ids: number[][] = [];
  const logp: number[][] = [];
  const tail: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = Array.from(logits.subarray(i * V, (i + 1) * V), (x) => x / temperature);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
    const lp = row.map((x) => x - lse);
    const order = lp
      .map((_, j) => j)
      .sort((a, b) => lp[b]! - lp[a]! || a - b)
      .slice(0, k);
    ids.push(order);
    logp.push(order.map((j) => lp[j]!));
    tail.push(Math.log(Math.max(0, 1 - order.reduce((a, j) => a + Math.exp(lp[j]!), 0))));
  }
  return { ids, logp, tail };
}

async function compare(model: Uint8Array, tokens: number[], B: number, T: number, k: number, temperature: number) {
  const V = checkTeacherContract(decodeModel(model, 'm'), 'm').vocabSize!;
  const full = await ort.InferenceSession.create(model);
  const logits = (await full.run({ input_ids: new ort.Tensor('int64', int64Ids(tokens), [B, T]) })).logits!
    .data as Float32Array;
  const ref = referenceTopK(logits, V, k, temperature);
  const s = appendTopK(model, 'm', { k, temperature });
  const sess = await createSession(s.bytes, 'm', { device: { kind: 'cpu' } });
  const got = await runTopK(sess, s.outputs, int64Ids(tokens), B, T);
  expect(got.vocab).toBe(V);
  expect(got.ids.length).toBe(B * T * k);
  let worst = 0;
  for (let i = 0; i < B * T; i++) {
    for (let j = 0; j < k; j++) {
      const lp = got.logp[i * k + j]!;
      worst = Math.max(worst, Math.abs(lp - ref.logp[i]![j]!));
      // Ids must agree except inside runs of (near-)equal probabilities, where either order is right.
      const tied =
        (j > 0 && Math.abs(ref.logp[i]![j]! - ref.logp[i]![j - 1]!) < 1e-5) ||
        (j + 1 < k && Math.abs(ref.logp[i]![j]! - ref.logp[i]![j + 1]!) < 1e-5) ||
        j === k - 1;
      if (!tied) expect(got.ids[i * k + j], `position ${i} slot ${j}`).toBe(ref.ids[i]![j]);
    }
    const t = got.tail[i]!;
    if (Number.isFinite(ref.tail[i]!) && ref.tail[i]! > -10)
      expect(Math.abs(t - ref.tail[i]!), `tail at ${i}`).toBeLessThan(2e-3);
  }
  expect(worst).toBeLessThan(1e-4);
}

describe('appendTopK', () => {
  it('on the fixture teacher equals the float64 top-k of the full logits (k = 8, T = 1 and T = 2)', async () => {
    const text = [
      ...Buffer.from('In the beginning God created the heaven and the earth. And the earth was without form'),
    ];
    const model = new Uint8Array(readFileSync(FIXTURE));
    await compare(model, text.slice(0, 80), 2, 40, 8, 1);
    await compare(model, text.slice(0, 21), 3, 7, 5, 2);
  });

  it('on a synthetic teacher with V = 32000 (odd shapes B = 3, T = 5, k = 5)', async () => {
    const model = buildSyntheticTeacher({ vocabSize: 32000, dim: 16, seed: 7 });
    const tokens = Array.from({ length: 15 }, (_, i) => (i * 7919) % 32000);
    await compare(model, tokens, 3, 5, 5, 1);
  });

  it('leaves the input model unchanged and only exposes the O(k) outputs; Multinomial draws valid ids', async () => {
    const bytes = new Uint8Array(readFileSync(FIXTURE));
    const before = Buffer.from(bytes).toString('base64');
    const s = appendTopK(bytes, FIXTURE, { k: 4, temperature: 1, samples: 3, seed: 1 });
    expect(Buffer.from(bytes).toString('base64')).toBe(before);
    const sess = await createSession(s.bytes, FIXTURE, { device: { kind: 'cpu' } });
    expect([...sess.outputNames].sort()).toEqual(
      [s.outputs.ids, s.outputs.logp, s.outputs.tail, s.outputs.vocab, s.outputs.samples!].sort(),
    );
    const r = await runTopK(sess, s.outputs, int64Ids([...Buffer.from('the LORD')]), 1, 8);
    expect(r.samples!.length).toBe(8 * 3);
    expect(Array.from(r.samples!).every((x) => x >= 0 && x < 257)).toBe(true);
  });

  it('refuses teachers that break the contract and k > V, naming what it found', () => {
    const noInput = buildSyntheticTeacher({ vocabSize: 50, dim: 4, inputName: 'tokens' });
    expect(() => appendTopK(noInput, 'x.onnx', { k: 2, temperature: 1 })).toThrow(
      /teacher x.onnx has no input "input_ids": expected input input_ids int64 \[B, T\], got inputs tokens int64 \[batch, seq\]/,
    );
    const noLogits = buildSyntheticTeacher({ vocabSize: 50, dim: 4, outputName: 'scores' });
    expect(() => appendTopK(noLogits, 'y.onnx', { k: 2, temperature: 1 })).toThrow(
      /has no output "logits".*got outputs scores float \[batch, seq, 50\]/,
    );
    const ok = buildSyntheticTeacher({ vocabSize: 50, dim: 4 });
    expect(() => appendTopK(ok, 'z.onnx', { k: 51, temperature: 1 })).toThrow(/expected k ≤ V = 50, got k = 51/);
    expect(() => appendTopK(new Uint8Array([1, 2, 3, 4]), 'junk.onnx', { k: 1, temperature: 1 })).toThrow(/junk.onnx/);
  });
});
