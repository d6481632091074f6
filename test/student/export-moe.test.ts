// ONNX export of MoE students under the teacher contract: ONNX Runtime's logits against the native engine's
// forward + LM head (≤ 1e-5) and the float64 reference engine, for both routers and balance kinds, shared experts
// or none, top-1 and top-2, interleaved or every layer, with dynamic batch and length; the routing agrees; and the
// exported MoE student runs as the next teacher.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { at } from '../../src/core/arrays.js';
import { lmHeadSlot, parseModelConfig, type ModelConfig } from '../../src/core/model.js';
import { createEngine, initParams, Rng, saveCheckpoint } from '../../src/engine/index.js';
import { buildOnnxModel, exportOnnx } from '../../src/student/export.js';
import { runTeacher } from '../../src/teacher/index.js';
import { corpusDataset, dumpCache } from '../teacher/helpers/cache.js';

const base = { vocabSize: 41, dModel: 24, nLayers: 3, nHeads: 4, nKvHeads: 2, ffnDim: 32, contextLength: 24 };

/** Engine logits: forward, then the LM head in float64 (the engines leave it to the loss). */
function engineLogits(
  c: ModelConfig,
  backend: 'native' | 'reference',
  params: Float32Array,
  tokens: Int32Array,
  B: number,
  T: number,
) {
  const eng = createEngine(c, { backend });
  const hidden = eng.forward(params, tokens, B, T);
  const loads = (eng.moeStats?.() ?? []).map((s) => s.load);
  eng.dispose();
  const head = lmHeadSlot(c);
  const out = new Float64Array(B * T * c.vocabSize);
  for (let n = 0; n < B * T; n++)
    for (let v = 0; v < c.vocabSize; v++) {
      let z = 0;
      for (let j = 0; j < c.dModel; j++) z += at(hidden, n * c.dModel + j) * at(params, head.offset + v * c.dModel + j);
      out[n * c.vocabSize + v] = z;
    }
  return { logits: out, loads };
}

async function compare(label: string, moe: Record<string, unknown>, tie = false) {
  const c = parseModelConfig({ ...base, tieEmbeddings: tie, moe });
  const rng = new Rng(label.length);
  const params = initParams(c, label.length, { std: 0.25 });
  for (const s of createEngine(c, { backend: 'reference' }).layout)
    if (s.name.endsWith('router_bias')) for (let i = 0; i < s.size; i++) params[s.offset + i] = 0.1 * rng.normal();
  const session = await ort.InferenceSession.create(buildOnnxModel(c, params));
  expect(session.inputNames).toEqual(['input_ids']);
  expect(session.outputNames).toEqual(['logits']);
  let native = 0,
    reference = 0;
  for (const [B, T] of [
    [1, 1],
    [2, 7],
    [3, c.contextLength],
  ] as const) {
    const tokens = Int32Array.from({ length: B * T }, () => rng.nextU32() % c.vocabSize);
    const res = await session.run({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(Array.from(tokens, BigInt)), [B, T]),
    });
    const got = res.logits?.data as Float32Array;
    expect(res.logits?.dims).toEqual([B, T, c.vocabSize]);
    const nat = engineLogits(c, 'native', params, tokens, B, T);
    const ref = engineLogits(c, 'reference', params, tokens, B, T);
    expect(nat.loads).toEqual(ref.loads);
    for (let i = 0; i < got.length; i++) {
      native = Math.max(native, Math.abs(at(got, i) - at(nat.logits, i)));
      reference = Math.max(reference, Math.abs(at(got, i) - at(ref.logits, i)));
    }
  }
  console.log(
    `ONNX MoE export (${label}): max |logit diff| vs native ${native.toExponential(2)}, vs float64 ${reference.toExponential(2)}`,
  );
  return { native, reference };
}

describe('ONNX export of MoE students', () => {
  const cases: Array<[string, Record<string, unknown>, boolean]> = [
    [
      'interleaved, sigmoid top-1, one shared, aux loss',
      { experts: 8, activeExperts: 1, expertFfnDim: 12, every: 2 },
      false,
    ],
    [
      'every layer, softmax top-2, selection bias, tied',
      { experts: 4, activeExperts: 2, expertFfnDim: 8, router: 'softmax', balance: { kind: 'bias', rate: 0.01 } },
      true,
    ],
    [
      'every layer, no shared expert, sigmoid top-2',
      { experts: 5, activeExperts: 2, sharedExperts: 0, expertFfnDim: 6 },
      false,
    ],
    [
      'every 3, two shared, selection bias',
      {
        experts: 3,
        activeExperts: 1,
        sharedExperts: 2,
        expertFfnDim: 5,
        every: 3,
        balance: { kind: 'bias', rate: 0.001 },
      },
      false,
    ],
  ];
  for (const [label, moe, tie] of cases) {
    it(`agrees with the native engine to 1e-5 (${label})`, async () => {
      const { native, reference } = await compare(label, moe, tie);
      expect(native).toBeLessThanOrEqual(1e-5);
      expect(reference).toBeLessThan(1e-5);
    });
  }

  it('teaches: the teacher runner on an exported MoE checkpoint writes the engine top-1', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-moe-teacher-'));
    const c = parseModelConfig({
      ...base,
      vocabSize: 257,
      contextLength: 16,
      moe: { experts: 4, activeExperts: 1, expertFfnDim: 8, every: 2 },
    });
    const params = initParams(c, 9, { std: 0.3 });
    saveCheckpoint(path.join(dir, 'ck'), { config: c, params });
    const onnx = path.join(dir, 'moe.onnx');
    expect(exportOnnx({ checkpoint: path.join(dir, 'ck'), out: onnx }).parameters).toBe(params.length);
    const [N, T] = [4, 16];
    const tokens = corpusDataset(path.join(dir, 'd.arrow'), N, T);
    const s = await runTeacher({
      model: onnx,
      data: path.join(dir, 'd.arrow'),
      out: path.join(dir, 'cache'),
      topK: 4,
      shards: 2,
    });
    expect(s.rows).toBe(N * T);
    const cache = await dumpCache(path.join(dir, 'cache'));
    const { logits } = engineLogits(c, 'native', params, Int32Array.from(tokens), N, T);
    let agree = 0;
    for (let i = 0; i < N * T; i++) {
      const row = logits.subarray(i * 257, (i + 1) * 257);
      const top = row.indexOf(Math.max(...row));
      if (at(cache.ids, i * 4) === top) agree++;
    }
    expect(agree).toBe(N * T);
  });

  it('writes the Optimum naming for MoE students too (an empty past gives the plain logits)', async () => {
    const c = parseModelConfig({ ...base, moe: { experts: 4, activeExperts: 2, expertFfnDim: 8, every: 2 } });
    const params = initParams(c, 4, { std: 0.3 });
    const plain = await ort.InferenceSession.create(buildOnnxModel(c, params));
    const opt = await ort.InferenceSession.create(buildOnnxModel(c, params, {}, 'optimum'));
    const ids = [3, 14, 15, 9, 2];
    const int64 = (xs: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs, BigInt), [1, xs.length]);
    const want = (await plain.run({ input_ids: int64(ids) })).logits?.data as Float32Array;
    const past = Object.fromEntries(
      opt.inputNames
        .filter((n) => n.startsWith('past'))
        .map((n) => [n, new ort.Tensor('float32', new Float32Array(0), [1, c.nKvHeads, 0, c.dModel / c.nHeads])]),
    );
    const got = (
      await opt.run({
        input_ids: int64(ids),
        attention_mask: int64(ids.map(() => 1)),
        position_ids: int64([0, 1, 2, 3, 4]),
        ...past,
      })
    ).logits?.data as Float32Array;
    let worst = 0;
    want.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - at(got, i)))));
    expect(worst).toBeLessThan(1e-5);
  });
});
