// The trainer on the float64 reference engine and the native CPU engine (one suite, both backends): a tiny batch overfits; stopping and resuming gives the
// uninterrupted run's losses and weights exactly; metrics.jsonl fields; bad configs and options refused.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseModelConfig, type ModelConfig } from '../../src/core/model.js';
import { loadCheckpoint } from '../../src/engine/index.js';
import { writeTokenDataset } from '../../src/data/index.js';
import { trainStudents, type TrainOptions } from '../../src/student/train.js';

const tiny = parseModelConfig({
  vocabSize: 13,
  dModel: 16,
  nLayers: 1,
  nHeads: 2,
  nKvHeads: 1,
  ffnDim: 24,
  contextLength: 8,
});

/** A real token dataset (Arrow) of n sequences × T tokens with a simple learnable pattern. */
function arrowDataset(numSequences: number, seqLen: number, vocabSize: number): string {
  const tokens = new Uint32Array(numSequences * seqLen);
  for (let s = 0; s < numSequences; s++)
    for (let t = 0; t < seqLen; t++) tokens[s * seqLen + t] = (s * 5 + t * 3 + ((s * t) % 4)) % vocabSize;
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'distill-ds-')), 'tokens.arrow');
  writeTokenDataset(
    file,
    { seqLen, vocabSize, eotId: 0, tokenizer: { name: 'test', sha256: 'b'.repeat(64) }, split: 'train' },
    tokens,
  );
  return file;
}

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'distill-train-'));
const readMetrics = (dir: string) =>
  readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);

const ds4 = arrowDataset(4, 8, 13);

function opts(
  backend: string,
  over: Partial<TrainOptions> & { out: string },
  cfg: ModelConfig = tiny,
  data = ds4,
): TrainOptions {
  return {
    students: [{ name: 'tiny', config: cfg }],
    data,
    steps: 6,
    batchSize: 2,
    lr: 1e-2,
    seed: 3,
    backend,
    ...over,
  };
}

for (const backend of ['reference', 'native'] as const)
  describe(`trainStudents (${backend} engine)`, () => {
    it('overfits a tiny batch', async () => {
      const out = tmp();
      const res = await trainStudents(
        opts(backend, { out, steps: 40, lr: 3e-2, warmupSteps: 2, weightDecay: 0 }, tiny, arrowDataset(2, 8, 13)),
      );
      const m = readMetrics(path.join(out, 'tiny'));
      expect(m).toHaveLength(40);
      expect(m[0].hardLoss).toBeGreaterThan(2);
      expect(m[39].hardLoss).toBeLessThan(0.25 * m[0].hardLoss);
      expect(res.students[0]!.last!.step).toBe(40);
    });

    it('writes metrics.jsonl with every field, and a loadable checkpoint', async () => {
      const out = tmp();
      await trainStudents(opts(backend, { out, steps: 3, gradAccum: 2 }));
      const m = readMetrics(path.join(out, 'tiny'));
      expect(m.map((r) => r.step)).toEqual([1, 2, 3]);
      for (const r of m) {
        for (const key of [
          'step',
          'loss',
          'hardLoss',
          'softLoss',
          'hard',
          'soft',
          'lr',
          'tokensPerSecond',
          'temperature',
          'agreement',
          'gradNorm',
          'tokens',
        ])
          expect(typeof r[key]).toBe('number');
        expect(r.hard).toBe(1);
        expect(r.soft).toBe(0);
        expect(r.tokensPerSecond).toBeGreaterThan(0);
      }
      expect(m[2].tokens).toBe(3 * 2 * 2 * 8);
      const ck = loadCheckpoint(path.join(out, 'tiny'), { resume: true });
      expect(ck.config).toEqual(tiny);
      expect(ck.trainerState!.step).toBe(3);
    });

    it('resumes exactly: stop after 3 of 7 steps, resume, and match the uninterrupted run', async () => {
      const full = tmp();
      await trainStudents(opts(backend, { out: full, steps: 7, gradAccum: 2 }));
      const part = tmp();
      const first = await trainStudents(opts(backend, { out: part, steps: 7, gradAccum: 2, stopAfter: 3 }));
      expect(first.step).toBe(3);
      const second = await trainStudents(opts(backend, { out: part, steps: 7, gradAccum: 2, resume: part }));
      expect(second.startStep).toBe(3);
      const a = readMetrics(path.join(full, 'tiny'));
      const b = readMetrics(path.join(part, 'tiny'));
      expect(b.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(b.map((r) => [r.loss, r.lr, r.gradNorm])).toEqual(a.map((r) => [r.loss, r.lr, r.gradNorm]));
      expect(loadCheckpoint(path.join(part, 'tiny')).params).toEqual(loadCheckpoint(path.join(full, 'tiny')).params);
    });

    it('averages gradients over accumulated micro-batches (2 × B/2 matches 1 × B)', async () => {
      const one = tmp(),
        two = tmp();
      await trainStudents(opts(backend, { out: one, steps: 3, batchSize: 4 }));
      await trainStudents(opts(backend, { out: two, steps: 3, batchSize: 2, gradAccum: 2 }));
      const a = readMetrics(path.join(one, 'tiny')),
        b = readMetrics(path.join(two, 'tiny'));
      for (let i = 0; i < 3; i++) {
        expect(b[i].loss).toBeCloseTo(a[i].loss, 5);
        expect(b[i].gradNorm).toBeCloseTo(a[i].gradNorm, 5);
        expect(b[i].tokens).toBe(a[i].tokens);
      }
    });

    it('refuses a resume with different run settings, naming the setting', async () => {
      const out = tmp();
      await trainStudents(opts(backend, { out, steps: 4, stopAfter: 2 }));
      await expect(trainStudents(opts(backend, { out, steps: 4, batchSize: 1, resume: out }))).rejects.toThrow(
        /batchSize differs from the interrupted run/,
      );
      await expect(trainStudents(opts(backend, { out: tmp(), steps: 4, resume: tmp() }))).rejects.toThrow(
        /config\.json not found/,
      );
      await expect(trainStudents(opts(backend, { out, steps: 4 }))).rejects.toThrow(
        /already holds a training run.*`resume`/,
      );
    });

    it('refuses bad options and configs before training', async () => {
      const out = tmp();
      await expect(trainStudents(opts(backend, { out, steps: 0 }))).rejects.toMatchObject({
        code: 'E_CONFIG',
        message: expect.stringMatching(/`steps` must be an integer ≥ 1/),
        details: expect.objectContaining({ field: 'steps' }),
      });
      await expect(trainStudents(opts(backend, { out }, { ...tiny, vocabSize: 14 }))).rejects.toThrow(
        /student tiny: vocabSize does not match the token dataset: expected 13/,
      );
      await expect(trainStudents(opts(backend, { out }, { ...tiny, contextLength: 4 }))).rejects.toThrow(
        /longer than contextLength/,
      );
      await expect(
        trainStudents(opts(backend, { out, students: [{ name: 'a', config: tiny, schedule: 'constant' }] })),
      ).rejects.toThrow(/has a schedule but no `cache`/);
      await expect(
        trainStudents(opts(backend, { out, students: [{ name: 'a', config: tiny, loss: 'kl-typo' }] })),
      ).rejects.toMatchObject({ code: 'E_REGISTRY_UNKNOWN', message: expect.stringMatching(/forward-kl/) });
      await expect(
        trainStudents(opts(backend, { out, students: [{ name: 'a', config: tiny, support: 'full' }] })),
      ).rejects.toThrow(/unknown teacher support: expected renormalize or bucket, got full/);
    });
  });
