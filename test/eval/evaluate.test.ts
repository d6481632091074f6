// evaluateCheckpoint / `distill eval`: a uniform student against hand-computed values, a random student
// against metrics from its own ONNX export's logits (onnxruntime-node), the student as its own teacher
// (KL 0, agreement 1, teacher CE = student CE) via the model and via a real cache, refusals, and the CLI.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../src/core/model.js';
import { openTokenDataset, prepareDataset } from '../../src/data/index.js';
import { evaluateCheckpoint } from '../../src/eval/evaluate.js';
import { evalMetrics, positionArraysFromLogits } from '../../src/eval/metrics.js';
import { teacherHeldOut } from '../../src/eval/teacher-eval.js';
import { assembleTokens } from '../../src/data/index.js';
import { initParams, saveCheckpoint } from '../../src/engine/index.js';
import { buildOnnxModel } from '../../src/student/index.js';
import { runTeacher } from '../../src/teacher/runner.js';
import { distillAsync } from '../helpers/cli.js';

const cfg: ModelConfig = {
  vocabSize: 257,
  dModel: 16,
  nLayers: 1,
  nHeads: 2,
  nKvHeads: 1,
  ffnDim: 32,
  contextLength: 32,
  tieEmbeddings: true,
  ropeTheta: 10000,
  normEps: 1e-5,
};

let dir: string;
let train: string;
let val: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'distill-eval-'));
  train = path.join(dir, 'tokens.arrow');
  const r = await prepareDataset({
    text: ['fixtures/corpus/ruth.txt'],
    tokenizer: 'byte',
    seqLen: 32,
    out: train,
    valFraction: 0.1,
  });
  val = r.val!.path;
});

function checkpoint(name: string, params: Float32Array, config = cfg): string {
  const d = path.join(dir, name);
  saveCheckpoint(d, { config, params });
  return d;
}

describe('evaluateCheckpoint', () => {
  it('matches hand-computed values for a uniform student', async () => {
    // All-zero weights: every hidden state is 0, every logit 0, p = 1/V everywhere.
    const ck = checkpoint('uniform', new Float32Array(initParams(cfg, 1).length));
    const ds = await openTokenDataset(val);
    const r = await evaluateCheckpoint({ checkpoint: ck, data: val });
    const positions = ds.numSequences * (ds.seqLen - 1);
    expect(r.positions).toBe(positions);
    expect(r.heldOutCE).toBeCloseTo(Math.log(257), 6);
    expect(r.perplexity).toBeCloseTo(257, 3);
    // argmax of a tie is id 0 (never a label in English text): accuracy 0, confidence 1/257 in bin 0.
    expect(r.accuracy).toBe(0);
    expect(r.ece).toBeCloseTo(1 / 257, 9);
    expect(r.calibration[0]!.count).toBe(positions);
    expect(Number.isNaN(r.agreement)).toBe(true);
    expect(Number.isNaN(r.klToTeacher)).toBe(true);
    expect(r.baseline).toBe(false);
    const file = JSON.parse(readFileSync(path.join(ck, 'eval.json'), 'utf8'));
    expect(file.heldOutCE).toBeCloseTo(Math.log(257), 6);
    expect(file.agreement).toBeNull();
    expect(file.name).toBe('uniform');
  });

  it('equals the metrics of its ONNX export’s logits, and is its own perfect teacher', async () => {
    const params = initParams(cfg, 7);
    const ck = checkpoint('random', params);
    const onnx = path.join(dir, 'random.onnx');
    writeFileSync(onnx, buildOnnxModel(cfg, params));
    const ds = await openTokenDataset(val);
    const session = await ort.InferenceSession.create(onnx);
    const seqs = Array.from({ length: ds.numSequences }, (_, i) => i);
    const { tokens, labels } = assembleTokens(ds, seqs);
    const out = await session.run({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(Array.from(tokens, BigInt)), [seqs.length, ds.seqLen]),
    });
    const want = evalMetrics(positionArraysFromLogits(out.logits!.data as Float32Array, tokens.length, 257, labels));

    const r = await evaluateCheckpoint({ checkpoint: ck, data: val, teacher: onnx, topK: 8, batchSize: 3 });
    expect(r.heldOutCE).toBeCloseTo(want.heldOutCE, 5);
    expect(r.ece).toBeCloseTo(want.ece, 4);
    expect(r.accuracy).toBeCloseTo(want.accuracy, 3);
    expect(r.teacher!.heldOutCE).toBeCloseTo(r.heldOutCE, 5);
    expect(r.agreement).toBeGreaterThan(0.999);
    expect(r.klToTeacher).toBeLessThan(1e-9 + 1e-6);
    expect(r.support).toEqual({ source: 'teacher', k: 8 });
    expect(r.tokensPerSecond).toBeGreaterThan(0);
  });

  it('reads the KL support from a cache made from the held-out data', async () => {
    const params = initParams(cfg, 7);
    const ck = checkpoint('cached', params);
    const onnx = path.join(dir, 'cached.onnx');
    writeFileSync(onnx, buildOnnxModel(cfg, params));
    const cache = path.join(dir, 'val-cache');
    await runTeacher({ model: onnx, data: val, out: cache, topK: 6, workers: 1, logp: 'float32' });
    const r = await evaluateCheckpoint({ checkpoint: ck, data: val, cache, teacher: onnx });
    expect(r.support).toEqual({ source: 'cache', k: 6 });
    expect(r.klToTeacher).toBeLessThan(1e-6);
    expect(r.agreement).toBeGreaterThan(0.999);
    expect(r.cache!.bytesPerPosition).toBeGreaterThan(6 * 4);
    // The teacher's own pass gives the same top-k as the cache.
    const t = await teacherHeldOut(onnx, await openTokenDataset(val), { k: 6 });
    const fromTeacher = await evaluateCheckpoint({ checkpoint: ck, data: val, teacher: t, write: false });
    expect(fromTeacher.klToTeacher).toBeLessThan(1e-6);
    expect(fromTeacher.heldOutCE).toBe(r.heldOutCE);
  });

  it('refuses a cache of other data, a too-short context and a teacher pass of other data', async () => {
    const params = initParams(cfg, 3);
    const ck = checkpoint('refuse', params);
    const onnx = path.join(dir, 'refuse.onnx');
    writeFileSync(onnx, buildOnnxModel(cfg, params));
    const trainCache = path.join(dir, 'train-cache');
    await runTeacher({ model: onnx, data: train, out: trainCache, topK: 4, workers: 1 });
    await expect(evaluateCheckpoint({ checkpoint: ck, data: val, cache: trainCache })).rejects.toMatchObject({
      code: expect.stringMatching(/E_FINGERPRINT_MISMATCH|E_CACHE/),
    });
    const short = { ...cfg, contextLength: 16 };
    const ck2 = checkpoint('short', initParams(short, 1), short);
    await expect(evaluateCheckpoint({ checkpoint: ck2, data: val })).rejects.toMatchObject({ code: 'E_CONFIG' });
    const t = await teacherHeldOut(onnx, await openTokenDataset(train), { k: 4 });
    await expect(evaluateCheckpoint({ checkpoint: ck, data: val, teacher: t })).rejects.toMatchObject({
      code: 'E_USAGE',
    });
    await expect(evaluateCheckpoint({ checkpoint: path.join(dir, 'nope'), data: val })).rejects.toMatchObject({
      code: expect.stringMatching(/^E_/),
    });
  });
});

describe('distill eval (CLI)', () => {
  it('evaluates a trained checkpoint, writes eval.json, and the report picks it up', async () => {
    const ok = (r: Awaited<ReturnType<typeof distillAsync>>) => {
      expect(r.status, r.stderr).toBe(0);
      return r.json();
    };
    writeFileSync(path.join(dir, 'kid.json'), JSON.stringify(cfg));
    const run = path.join(dir, 'run');
    ok(
      await distillAsync([
        'student',
        'train',
        '--config',
        path.join(dir, 'kid.json'),
        '--data',
        train,
        '--steps',
        '3',
        '--batch-size',
        '4',
        '--lr',
        '1e-2',
        '--seed',
        '1',
        '--out',
        run,
        '--json',
      ]),
    );
    const res = ok(
      await distillAsync([
        'eval',
        '--checkpoint',
        path.join(run, 'kid'),
        '--data',
        val,
        '--teacher',
        'fixtures/teacher/model.onnx',
        '--top-k',
        '16',
        '--json',
      ]),
    );
    expect(res.baseline).toBe(true);
    expect(res.heldOutCE).toBeGreaterThan(0);
    expect(res.heldOutCE).toBeLessThan(Math.log(257) + 1);
    expect(res.teacher.heldOutCE).toBeLessThan(res.heldOutCE);
    expect(res.agreement).toBeGreaterThanOrEqual(0);
    expect(res.klToTeacher).toBeGreaterThan(0);
    expect(existsSync(path.join(run, 'kid', 'eval.json'))).toBe(true);
    const rep = ok(await distillAsync(['report', run, '--out', path.join(dir, 'report'), '--json']));
    expect(rep.summary.students[0].heldOutCE).toBeCloseTo(res.heldOutCE, 9);
    expect(rep.summary.teacher.heldOutCE).toBeCloseTo(res.teacher.heldOutCE, 9);
    const bad = await distillAsync(['eval', '--checkpoint', path.join(dir, 'missing'), '--data', val]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });
});
