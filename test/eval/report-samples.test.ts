// The report's sample completions with real parts: a student trained on the native engine and the fixture ONNX
// teacher complete the same held-out prompts greedily; the teacher's tokens are checked against one forward of the
// whole completed sequence (each is the top-1 after its prefix), and the HTML shows them side by side, escaped.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/core/model.js';
import { openTokenDataset } from '../../src/data/index.js';
import { evaluateCheckpoint, readRuns, renderReport, sampleCompletions, writeReport } from '../../src/eval/index.js';
import { trainStudents } from '../../src/student/train.js';
import { openBackend } from '../../src/teacher/backends/index.js';
import { corpusDataset, FIXTURE_MODEL } from '../teacher/helpers/cache.js';
import { demoRuns } from './helpers/runs.js';

const kid = parseModelConfig({
  vocabSize: 257,
  dModel: 16,
  nLayers: 1,
  nHeads: 2,
  nKvHeads: 1,
  ffnDim: 24,
  contextLength: 24,
  tieEmbeddings: true,
});

let dir: string;
let data: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'distill-samples-'));
  data = path.join(dir, 'd.arrow');
  corpusDataset(data, 6, 24, 5000);
  await trainStudents({
    students: [{ name: 'kid', config: kid }],
    data,
    steps: 2,
    batchSize: 2,
    lr: 1e-2,
    seed: 1,
    out: path.join(dir, 'run'),
  });
  await evaluateCheckpoint({ checkpoint: path.join(dir, 'run', 'kid'), data });
}, 120_000);

describe('report sample completions', () => {
  it('the teacher and each student complete the same prompts; the teacher greedily, token by token', async () => {
    const s = await sampleCompletions([{ name: 'kid', dir: path.join(dir, 'run', 'kid') }], {
      data,
      teacher: FIXTURE_MODEL,
      rows: 2,
      promptTokens: 12,
      newTokens: 8,
    });
    expect(s).toMatchObject({ promptTokens: 12, newTokens: 8, students: ['kid'] });
    expect(s.teacherMethod).toMatch(/model\.onnx, greedy/);
    const ds = await openTokenDataset(data);
    expect(s.rows.map((r) => r.prompt)).toEqual(
      [0, 1].map((i) => Buffer.from(ds.sequence(i).subarray(0, 12)).toString('latin1')),
    );
    // One forward of prompt + completion: each completion byte is the teacher's top-1 after its prefix.
    const backend = await openBackend(
      'onnx',
      { model: FIXTURE_MODEL },
      { k: 1, temperature: 1, samples: 0, device: { kind: 'cpu' } },
    );
    await backend.start({ B: 2, T: 20 });
    const seqs = s.rows.map((r) => [...Buffer.from(r.prompt + (r.teacher ?? ''), 'latin1')]);
    expect(seqs.map((x) => x.length)).toEqual([20, 20]);
    const [part] = await backend.score({
      tokens: Uint32Array.from(seqs.flat()),
      nSeq: 2,
      seqLen: 20,
      firstSeq: 0,
      batchSize: 2,
    });
    await backend.close();
    for (let b = 0; b < 2; b++) for (let t = 11; t < 19; t++) expect(part!.ids[b * 20 + t]).toBe(seqs[b]![t + 1]);
    for (const r of s.rows) expect(r.students[0]).toHaveLength(8);
  }, 120_000);

  it('report.html shows them side by side, escaped; writeReport computes them from its options', async () => {
    const samples = {
      promptTokens: 4,
      newTokens: 4,
      teacherMethod: 'model.onnx, greedy',
      students: ['small-const'],
      rows: [{ prompt: 'a<b', teacher: ' & c', students: ['"d"'] }],
    };
    const { root } = demoRuns();
    const { html } = renderReport(readRuns([root]), 'r', { samples });
    expect(html).toContain('<h2>Sample completions</h2>');
    expect(html).toContain('<th>prompt</th><th>teacher</th><th>small-const</th>');
    expect(html).toContain('<th scope="row">a&lt;b</th><td> &amp; c</td><td>&quot;d&quot;</td>');
    expect(renderReport(readRuns([root]), 'r').html).not.toContain('Sample completions');
    const out = path.join(dir, 'report');
    await writeReport([path.join(dir, 'run')], out, {
      samples: { data, teacher: FIXTURE_MODEL, rows: 1, promptTokens: 12, newTokens: 8 },
    });
    const page = readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(page).toContain('<th>prompt</th><th>teacher</th><th>kid</th>');
    expect(page).toContain('then 8 tokens decoded greedily by each model');
  }, 120_000);
});
