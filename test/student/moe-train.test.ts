// Training MoE students (native and float64 reference engines): the selection bias moves toward even load and is
// saved with the weights, a stopped and resumed run matches the uninterrupted one exactly, metrics.jsonl carries
// per-layer routing metrics and the aux loss in the step loss; dead experts are flagged.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseModelConfig, paramLayout, type ModelConfig } from '../../src/core/model.js';
import { DEAD_EXPERT_STEPS } from '../../src/core/moe.js';
import { readMetricsLog } from '../../src/data/metrics-log.js';
import { writeTokenDataset } from '../../src/data/index.js';
import { loadCheckpoint } from '../../src/engine/index.js';
import { MoeTracker } from '../../src/student/moe-tracker.js';
import { trainStudents, type TrainOptions } from '../../src/student/train.js';

const dense = { vocabSize: 17, dModel: 16, nLayers: 2, nHeads: 2, nKvHeads: 1, ffnDim: 24, contextLength: 8 };
const biasMoe = parseModelConfig({
  ...dense,
  moe: { experts: 4, activeExperts: 1, expertFfnDim: 12, every: 2, balance: { kind: 'bias', rate: 0.01 } },
});
const auxMoe = parseModelConfig({
  ...dense,
  moe: { experts: 4, activeExperts: 2, expertFfnDim: 8, router: 'softmax', balance: { kind: 'aux-loss', coef: 0.05 } },
});

const work = () => mkdtempSync(path.join(os.tmpdir(), 'distill-moe-train-'));
const data = (() => {
  const seqs = 6,
    T = 8;
  const tokens = Uint32Array.from({ length: seqs * T }, (_, i) => (i * 7 + Math.floor(i / 5)) % dense.vocabSize);
  const file = path.join(work(), 'tokens.arrow');
  const meta = { seqLen: T, vocabSize: dense.vocabSize, eotId: 0, split: 'train' as const };
  writeTokenDataset(file, { ...meta, tokenizer: { name: 'test', sha256: 'c'.repeat(64) } }, tokens);
  return file;
})();

const run = (backend: string, config: ModelConfig, over: Partial<TrainOptions> & { out: string }) =>
  trainStudents({
    students: [{ name: 'moe', config }],
    data,
    steps: 6,
    batchSize: 2,
    gradAccum: 2,
    lr: 1e-2,
    seed: 5,
    backend,
    ...over,
  });

const tensor = (config: ModelConfig, params: Float32Array, name: string) => {
  const s = paramLayout(config).find((x) => x.name === name);
  if (!s) throw new Error(`no ${name}`);
  return Array.from(params.subarray(s.offset, s.offset + s.size));
};

for (const backend of ['native', 'reference'] as const) {
  describe(`training MoE students (${backend} engine)`, () => {
    it('moves the selection bias by ±rate toward even load, saves it, and resumes exactly', async () => {
      const full = work();
      await run(backend, biasMoe, { out: full });
      const rows = readMetricsLog(path.join(full, 'moe', 'metrics.jsonl')).rows;
      expect(rows).toHaveLength(6);
      for (const r of rows) {
        expect(r.moe).toHaveLength(1);
        const m = r.moe?.[0];
        expect(m?.layer).toBe(1);
        expect(m?.load.reduce((a, b) => a + b, 0)).toBe(2 * 2 * 8); // gradAccum · batch · T tokens, top-1
        expect(m?.auxLoss).toBe(0);
        expect(m?.maxOverMean).toBeGreaterThanOrEqual(1);
      }
      // Replay the rule on the logged loads: b += rate · sign(mean − load), starting at 0.
      const expected = [0, 0, 0, 0];
      for (const r of rows) {
        const load = r.moe?.[0]?.load ?? [];
        const mean = load.reduce((a, b) => a + b, 0) / 4;
        load.forEach(
          (c, e) => (expected[e] = Math.fround((expected[e] ?? 0) + Math.fround(0.01) * Math.sign(mean - c))),
        );
      }
      const ck = loadCheckpoint(path.join(full, 'moe'));
      const bias = tensor(biasMoe, ck.params, 'layers.1.router_bias');
      expect(bias).toEqual(expected);
      expect(bias.some((b) => b !== 0)).toBe(true);

      const part = work();
      await run(backend, biasMoe, { out: part, stopAfter: 3 });
      await run(backend, biasMoe, { out: part, resume: part });
      const again = readMetricsLog(path.join(part, 'moe', 'metrics.jsonl')).rows;
      expect(again.map((r) => [r.loss, r.gradNorm, r.moe])).toEqual(rows.map((r) => [r.loss, r.gradNorm, r.moe]));
      expect(loadCheckpoint(path.join(part, 'moe')).params).toEqual(ck.params);
    });

    it('adds the aux loss to the step loss; gradients average over micro-batches', async () => {
      const noAux = parseModelConfig({ ...auxMoe, moe: { ...auxMoe.moe, balance: { kind: 'aux-loss', coef: 0 } } });
      const [one, two, withAux] = [work(), work(), work()];
      await run(backend, noAux, { out: one, steps: 3, batchSize: 4, gradAccum: 1 });
      await run(backend, noAux, { out: two, steps: 3, batchSize: 2, gradAccum: 2 });
      await run(backend, auxMoe, { out: withAux, steps: 3, batchSize: 2, gradAccum: 2 });
      const [a, b, c] = [one, two, withAux].map((d) => readMetricsLog(path.join(d, 'moe', 'metrics.jsonl')).rows);
      for (const r of c ?? []) {
        expect(r.moe).toHaveLength(2);
        const aux = (r.moe ?? []).reduce((s, m) => s + m.auxLoss, 0);
        expect(aux).toBeGreaterThan(0.05 * 2 * 0.99); // coef · balance ≥ coef per layer
        expect(r.loss).toBeCloseTo(r.hardLoss + aux, 10);
      }
      // Routing is per token: the first step routes the same tokens either way, and (without the aux loss,
      // whose f·P product is not additive over micro-batches) 2 × B/2 gives the gradient of 1 × B.
      expect(b?.[0]?.moe?.map((m) => m.load)).toEqual(a?.[0]?.moe?.map((m) => m.load));
      expect(b?.[0]?.gradNorm).toBeCloseTo(a?.[0]?.gradNorm ?? NaN, 5);
      expect(b?.[0]?.loss).toBeCloseTo(a?.[0]?.loss ?? NaN, 5);
      expect(Math.abs((c?.[0]?.gradNorm ?? 0) - (b?.[0]?.gradNorm ?? 0))).toBeGreaterThan(1e-6);
    });
  });
}

describe('MoeTracker', () => {
  it(`flags an expert that gets no token for ${DEAD_EXPERT_STEPS} steps in a row, and keeps the count across a save`, () => {
    const layout = paramLayout(biasMoe);
    const stats = (load: number[]) => [{ load, tokens: 8, entropy: 1, balance: 1.5, auxLoss: 0 }];
    const t = new MoeTracker(biasMoe, layout);
    const params = new Float32Array(layout.reduce((n, s) => n + s.size, 0));
    for (let step = 1; step < DEAD_EXPERT_STEPS; step++) {
      t.observe(stats([3, 5, 0, 0]));
      expect(t.endStep(params)[0]?.dead).toBeUndefined();
    }
    const resumed = new MoeTracker(biasMoe, layout, t.state());
    resumed.observe(stats([4, 4, 0, 0]));
    resumed.observe(stats([4, 3, 0, 1]));
    const last = resumed.endStep(params);
    expect(last[0]?.dead).toEqual([2]);
    expect(last[0]?.load).toEqual([8, 7, 0, 1]);
    expect(last[0]?.maxOverMean).toBe(2);
    expect(() => new MoeTracker(biasMoe, layout, { idleSteps: [[0, 0]] })).toThrow(/MoE state does not match/);
  });
});
