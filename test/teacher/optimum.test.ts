// Hugging Face Optimum exports as teachers: our exporter writes a Llama with Optimum's text-generation naming
// (attention_mask, position_ids, past_key_values.N.key/value → logits, present.N.*); its KV cache really works,
// and the ONNX backend, feeding a mask of ones, positions 0..T−1 and an empty past, writes the plain export's cache.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/core/model.js';
import { decodeModel, encodeModel, graphInputs, graphOutputs } from '../../src/onnx/index.js';
import { buildOnnxModel } from '../../src/student/export.js';
import { buildSyntheticTeacher, runTeacher } from '../../src/teacher/index.js';
import { randomParams } from '../student/helpers/llama-ref.js';
import { corpusDataset, dumpCache } from './helpers/cache.js';

const config = parseModelConfig({
  vocabSize: 257,
  dModel: 32,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 48,
  contextLength: 32,
  ropeTheta: 10000,
});
const params = randomParams(config, 3, 0.3);
const int64 = (xs: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs, BigInt), dims);

describe('a Hugging Face Optimum export as the teacher', () => {
  const optimum = buildOnnxModel(config, params, {}, 'optimum');

  it('has Optimum’s inputs and outputs, and its past really continues a sequence', async () => {
    const m = decodeModel(optimum, 'optimum');
    expect(graphInputs(m).map((t) => t.name)).toEqual([
      'input_ids',
      'attention_mask',
      'position_ids',
      'past_key_values.0.key',
      'past_key_values.0.value',
      'past_key_values.1.key',
      'past_key_values.1.value',
    ]);
    expect(graphInputs(m)[3]?.dims).toEqual(['batch_size', 2, 'past_sequence_length', 8]);
    expect(graphOutputs(m).map((t) => t.name)).toEqual([
      'present.0.key',
      'present.0.value',
      'present.1.key',
      'present.1.value',
      'logits',
    ]);
    const plain = await ort.InferenceSession.create(buildOnnxModel(config, params));
    const opt = await ort.InferenceSession.create(optimum);
    const tokens = [72, 101, 108, 108, 111, 32];
    const full = (await plain.run({ input_ids: int64(tokens, [1, 6]) })).logits?.data as Float32Array;
    const empty = Object.fromEntries(
      opt.inputNames
        .filter((n) => n.startsWith('past'))
        .map((n) => [n, new ort.Tensor('float32', new Float32Array(0), [1, 2, 0, 8])]),
    );
    // The first four tokens with an empty past, then the last two with the past it returned.
    const first = await opt.run({
      input_ids: int64(tokens.slice(0, 4), [1, 4]),
      attention_mask: int64([1, 1, 1, 1], [1, 4]),
      position_ids: int64([0, 1, 2, 3], [1, 4]),
      ...empty,
    });
    const past = Object.fromEntries(
      Object.entries(first)
        .filter(([n]) => n.startsWith('present.'))
        .map(([n, t]) => [n.replace('present.', 'past_key_values.'), t]),
    );
    const second = await opt.run({
      input_ids: int64(tokens.slice(4), [1, 2]),
      attention_mask: int64([1, 1, 1, 1, 1, 1], [1, 6]),
      position_ids: int64([4, 5], [1, 2]),
      ...past,
    });
    const got = [...(first.logits?.data as Float32Array), ...(second.logits?.data as Float32Array)];
    let worst = 0;
    full.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - (got[i] ?? NaN)))));
    expect(got.length).toBe(full.length);
    expect(worst).toBeLessThan(1e-4);
  });

  it('writes the same cache as the plain contract (same ids, log-probabilities within 1e-5)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-optimum-'));
    const data = path.join(dir, 'd.arrow');
    corpusDataset(data, 10, 24);
    writeFileSync(path.join(dir, 'plain.onnx'), buildOnnxModel(config, params));
    writeFileSync(path.join(dir, 'optimum.onnx'), optimum);
    const run = (model: string, out: string) =>
      runTeacher({ model: path.join(dir, model), data, out: path.join(dir, out), topK: 8, shards: 3, batchSize: 3 });
    const a = await run('plain.onnx', 'plain');
    const b = await run('optimum.onnx', 'optimum');
    expect(b.rows).toBe(10 * 24);
    // Two files, two teachers: the fingerprints differ, the contents agree.
    expect(b.fingerprint).not.toBe(a.fingerprint);
    const want = await dumpCache(path.join(dir, 'plain'));
    const got = await dumpCache(path.join(dir, 'optimum'));
    expect(got.ids).toEqual(want.ids);
    let worst = 0;
    want.logp.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - (got.logp[i] ?? NaN)))));
    expect(worst).toBeLessThan(1e-5);
  });

  it('refuses an input that is neither the plain contract’s nor Optimum’s', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-optimum-'));
    const data = path.join(dir, 'd.arrow');
    corpusDataset(data, 2, 8);
    const model = path.join(dir, 'm.onnx');
    const m = decodeModel(buildSyntheticTeacher({ vocabSize: 257, dim: 4 }), 'm');
    m.graph?.input?.push({ ...(m.graph.input[0] ?? {}), name: 'token_type_ids' });
    writeFileSync(model, encodeModel(m));
    await expect(runTeacher({ model, data, out: path.join(dir, 'c'), topK: 2 })).rejects.toMatchObject({
      code: 'E_MODEL',
      message: expect.stringMatching(/needs an input the runner cannot feed.*got token_type_ids int64/),
    });
  });
});
