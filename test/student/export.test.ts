// ONNX export parity: the exported graph run by onnxruntime-node against a float64 Llama forward,
// for GQA and MHA, tied and untied heads, several (B, T) through one session (dynamic dims).
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { paramLayout, parseModelConfig } from '../../src/core/model.js';
import { createEngine, saveCheckpoint } from '../../src/engine/index.js';
import { buildOnnxModel, exportOnnx } from '../../src/student/export.js';
import { randomParams, refLogits } from './helpers/llama-ref.js';

const gqa = parseModelConfig({
  vocabSize: 37,
  dModel: 24,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 40,
  contextLength: 16,
  ropeTheta: 500,
});
const tiedMha = parseModelConfig({
  vocabSize: 29,
  dModel: 16,
  nLayers: 1,
  nHeads: 2,
  nKvHeads: 2,
  ffnDim: 24,
  contextLength: 8,
  tieEmbeddings: true,
});

async function maxDiff(
  cfg: typeof gqa,
  params: Float32Array,
  session: ort.InferenceSession,
  B: number,
  T: number,
  seed: number,
): Promise<number> {
  const tokens = Array.from({ length: B * T }, (_, i) => (i * 7 + seed * 13) % cfg.vocabSize);
  const out = await session.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens.map(BigInt)), [B, T]) });
  const logits = out.logits!;
  expect(logits.dims).toEqual([B, T, cfg.vocabSize]);
  expect(logits.type).toBe('float32');
  const ref = refLogits(cfg, params, tokens, B, T);
  const got = logits.data as Float32Array;
  let mx = 0;
  for (let i = 0; i < ref.length; i++) mx = Math.max(mx, Math.abs(ref[i]! - got[i]!));
  return mx;
}

describe('ONNX export', () => {
  for (const [label, cfg] of [
    ['GQA, untied', gqa],
    ['MHA, tied', tiedMha],
  ] as const) {
    it(`matches the float64 forward (${label}) with dynamic batch and length`, async () => {
      const params = randomParams(cfg, 7);
      const session = await ort.InferenceSession.create(buildOnnxModel(cfg, params));
      expect(session.inputNames).toEqual(['input_ids']);
      expect(session.outputNames).toEqual(['logits']);
      let worst = 0;
      for (const [B, T, seed] of [
        [1, 1, 0],
        [2, 5, 1],
        [3, cfg.contextLength, 2],
      ] as const)
        worst = Math.max(worst, await maxDiff(cfg, params, session, B, T, seed));
      // float32 graph vs float64 reference on logits of magnitude ~1: the bound is a few ulps of accumulation.
      console.log(`ONNX export parity (${label}): max |logit diff| = ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-4);
    });
  }

  for (const backend of ['native', 'reference'] as const) {
    it(`matches the ${backend} engine's forward + LM head`, async () => {
      const params = randomParams(gqa, 11);
      const [B, T] = [2, 9];
      const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 5 + 3) % gqa.vocabSize);
      const engine = createEngine(gqa, { backend });
      const hidden = engine.forward(params, tokens, B, T);
      engine.dispose();
      const head = paramLayout(gqa).find((s) => s.name === 'lm_head')!;
      const session = await ort.InferenceSession.create(buildOnnxModel(gqa, params));
      const got = (
        await session.run({
          input_ids: new ort.Tensor('int64', BigInt64Array.from(Array.from(tokens, BigInt)), [B, T]),
        })
      ).logits!.data as Float32Array;
      let worst = 0;
      for (let n = 0; n < B * T; n++)
        for (let v = 0; v < gqa.vocabSize; v++) {
          let z = 0;
          for (let j = 0; j < gqa.dModel; j++)
            z += hidden[n * gqa.dModel + j]! * params[head.offset + v * gqa.dModel + j]!;
          worst = Math.max(worst, Math.abs(z - got[n * gqa.vocabSize + v]!));
        }
      console.log(`ONNX export vs ${backend} engine: max |logit diff| = ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-4);
    });
  }

  it('exports a checkpoint folder to a file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-export-'));
    const params = randomParams(gqa, 3);
    saveCheckpoint(dir, { config: gqa, params });
    const res = exportOnnx({ checkpoint: dir, out: path.join(dir, 'model.onnx') });
    expect(res.parameters).toBe(params.length);
    const session = await ort.InferenceSession.create(res.out);
    expect(await maxDiff(gqa, params, session, 2, 4, 5)).toBeLessThan(1e-4);
  });

  it('names the missing file when the checkpoint folder is wrong', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-export-'));
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify(gqa));
    expect(() => exportOnnx({ checkpoint: dir, out: path.join(dir, 'x.onnx') })).toThrow(
      /model\.safetensors not found/,
    );
  });
});
