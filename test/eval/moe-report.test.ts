// MoE students in evaluation and reports: eval.json carries active parameters and each MoE layer's held-out
// routing; the report lists total and active parameters and the experts, draws one expert-load heatmap per MoE
// layer over training, and strikes through (and lists) experts that ended training dead.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { activeParameterCount, parameterCount, parseModelConfig } from '../../src/core/model.js';
import { writeTokenDataset } from '../../src/data/index.js';
import { readEvalFile } from '../../src/eval/eval-file.js';
import { evaluateCheckpoint } from '../../src/eval/evaluate.js';
import { readRuns, renderReport } from '../../src/eval/index.js';
import { trainStudents } from '../../src/student/train.js';

const config = parseModelConfig({
  vocabSize: 19,
  dModel: 16,
  nLayers: 2,
  nHeads: 2,
  nKvHeads: 1,
  ffnDim: 24,
  contextLength: 8,
  moe: { experts: 4, activeExperts: 2, expertFfnDim: 8, every: 2, balance: { kind: 'bias', rate: 0.01 } },
});
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'distill-moe-eval-'));

function dataset(file: string, seqs: number, offset: number): string {
  const T = 8;
  const tokens = Uint32Array.from({ length: seqs * T }, (_, i) => ((i + offset) * 5 + Math.floor(i / 3)) % 19);
  const meta = { seqLen: T, vocabSize: 19, eotId: 0, tokenizer: { name: 'test', sha256: 'd'.repeat(64) } };
  writeTokenDataset(file, { ...meta, split: 'train' }, tokens);
  return file;
}

describe('MoE students in eval and reports', () => {
  it('evaluates routing on held-out tokens and draws the expert load over training', async () => {
    const dir = tmp();
    const out = path.join(dir, 'run');
    await trainStudents({
      students: [{ name: 'moe', config }],
      data: dataset(path.join(dir, 'train.arrow'), 8, 0),
      steps: 12,
      batchSize: 2,
      lr: 1e-2,
      seed: 1,
      out,
    });
    const held = dataset(path.join(dir, 'held.arrow'), 3, 100);
    const res = await evaluateCheckpoint({ checkpoint: path.join(out, 'moe'), data: held });
    const ev = readEvalFile(path.join(out, 'moe', 'eval.json'));
    expect(ev.activeParams).toBe(activeParameterCount(config));
    expect(ev.params).toBe(parameterCount(config));
    expect(ev.activeParams).toBeLessThan(ev.params);
    expect(ev.moe).toHaveLength(1);
    expect(ev.moe?.[0]?.layer).toBe(1);
    expect(ev.moe?.[0]?.load.reduce((a, b) => a + b, 0)).toBe(3 * 8 * 2); // held-out tokens × top-2
    expect(res.moe).toEqual(ev.moe);

    const { html, markdown, summary } = renderReport(readRuns([out]));
    const st = summary.students[0];
    expect(st?.activeParams).toBe(activeParameterCount(config));
    expect(st?.moe).toMatchObject({ experts: 4, activeExperts: 2, sharedExperts: 1, every: 2 });
    expect(markdown).toContain('4 routed (top-2) + 1 shared, every 2nd layer');
    expect(markdown).toContain('## Mixture of experts');
    expect(html).toContain('moe: layer 1 expert load over training');
    // One shaded cell per expert and step (12 steps, 4 experts), nothing else uses class="cell".
    expect((html.match(/class="cell"/g) ?? []).length).toBe(12 * 4);
  });

  it('marks the experts that ended training dead', () => {
    const root = tmp();
    const dir = path.join(root, 'sleepy');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    const rows = Array.from({ length: 300 }, (_, i) => ({
      step: i + 1,
      loss: 2,
      hardLoss: 2,
      softLoss: 0,
      hard: 1,
      soft: 0,
      lr: 1e-3,
      tokensPerSecond: 1000,
      temperature: 1,
      agreement: 0,
      gradNorm: 1,
      tokens: (i + 1) * 64,
      moe: [
        {
          layer: 1,
          load: i < 100 ? [40, 40, 40, 8] : [48, 40, 40, 0],
          maxOverMean: 1.5,
          entropy: 1.2,
          balance: 1.1,
          auxLoss: 0,
          ...(i >= 119 ? { dead: [3] } : {}),
        },
      ],
    }));
    writeFileSync(path.join(dir, 'metrics.jsonl'), rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
    writeFileSync(
      path.join(dir, 'eval.json'),
      JSON.stringify({
        name: 'sleepy',
        heldOutCE: 2,
        params: 9000,
        activeParams: 5000,
        moe: [{ ...rows[299]?.moe[0], dead: undefined }],
      }),
    );
    const { html, markdown, summary } = renderReport(readRuns([root]));
    expect(summary.students[0]?.moe?.layers[0]?.deadAtEnd).toEqual([3]);
    expect(html).toContain('(dead at the end: 3)');
    expect(html).toMatch(/fill="#d62728" text-decoration="line-through">expert 3</);
    // 300 steps are averaged into at most 120 columns.
    expect((html.match(/class="cell"/g) ?? []).length).toBe(4 * 100);
    expect(markdown).toMatch(/\| sleepy \| 1 \| 38% 31% 31% 0% \| 1\.50 \| 1\.200 \| 3 \|/);
    expect(markdown).toContain('| sleepy | 9.0k | 5.0k |');
  });
});
