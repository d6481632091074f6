// Students started from a Hugging Face checkpoint: export → `init` gives the exported weights back as the
// starting point (all layers, or a subset renumbered), mismatched students are refused naming the tensor
// or config key, and `distill student train --init --init-layers` takes the checkpoint's own architecture.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { paramLayout, parseModelConfig } from '../../src/core/model.js';
import { prepareDataset } from '../../src/data/index.js';
import { loadCheckpoint } from '../../src/engine/index.js';
import { exportHuggingFace } from '../../src/engine/hf/index.js';
import { trainStudents } from '../../src/student/train.js';
import { distillAsync } from '../helpers/cli.js';
import { GQA, tmp, writeCheckpoint } from './helpers/models.js';

async function setup() {
  const ck = writeCheckpoint(GQA, 21);
  const hf = tmp('hf');
  await exportHuggingFace({ checkpoint: ck.dir, out: hf });
  const data = path.join(tmp('data'), 'ruth.arrow');
  await prepareDataset({ text: ['fixtures/corpus/ruth.txt'], tokenizer: 'byte', seqLen: 32, out: data });
  return { ...ck, hf, data };
}

/** One step at a negligible learning rate: the saved weights are the starting weights to ~1e-9. */
const oneStep = { steps: 1, batchSize: 2, lr: 1e-12, weightDecay: 0, seed: 1 };

describe('training from a Hugging Face checkpoint', () => {
  it('starts from the exported weights, all layers or a subset in order', async () => {
    const { params, hf, data } = await setup();
    const out = tmp('run');
    await trainStudents({ ...oneStep, students: [{ name: 'full', config: GQA }], data, out, init: { dir: hf } });
    const full = loadCheckpoint(path.join(out, 'full')).params;
    let worst = 0;
    for (let i = 0; i < params.length; i++) worst = Math.max(worst, Math.abs(full[i]! - params[i]!));
    expect(worst).toBeLessThan(1e-9);

    const pruned = parseModelConfig({ ...GQA, nLayers: 2 });
    const out2 = tmp('run');
    await trainStudents({
      ...oneStep,
      students: [{ name: 'pruned', config: pruned }],
      data,
      out: out2,
      init: { dir: hf, layers: [2, 0] },
    });
    const got = loadCheckpoint(path.join(out2, 'pruned')).params;
    const src = new Map(paramLayout(GQA).map((s) => [s.name, params.subarray(s.offset, s.offset + s.size)]));
    for (const s of paramLayout(pruned)) {
      // Student layer 0 is source layer 2, student layer 1 is source layer 0.
      const from = s.name.replace(/^layers\.(\d)\./, (_, l) => `layers.${[2, 0][Number(l)]}.`);
      const want = src.get(from)!;
      for (let i = 0; i < s.size; i++) expect(Math.abs(got[s.offset + i]! - want[i]!)).toBeLessThan(1e-9);
    }
  }, 120_000);

  it('refuses a student whose shapes or RoPE base differ, naming the tensor or the key', async () => {
    const { hf, data } = await setup();
    const wide = parseModelConfig({ ...GQA, dModel: 32, nHeads: 4 });
    await expect(
      trainStudents({
        ...oneStep,
        students: [{ name: 'wide', config: wide }],
        data,
        out: tmp('run'),
        init: { dir: hf },
      }),
    ).rejects.toThrow(
      /student wide does not match tensor model\.embed_tokens\.weight of .*: expected \[257, 32\].*got \[257, 24\]/,
    );
    const deep = parseModelConfig({ ...GQA, nLayers: 4 });
    await expect(
      trainStudents({
        ...oneStep,
        students: [{ name: 'deep', config: deep }],
        data,
        out: tmp('run'),
        init: { dir: hf },
      }),
    ).rejects.toThrow(/student deep does not match tensor model\.layers\.3\.input_layernorm\.weight.*no such tensor/);
    const theta = parseModelConfig({ ...GQA, ropeTheta: 10000 });
    await expect(
      trainStudents({ ...oneStep, students: [{ name: 't', config: theta }], data, out: tmp('run'), init: { dir: hf } }),
    ).rejects.toThrow(/expected ropeTheta = 500 \(rope_theta in config\.json\), got 10000/);
  }, 120_000);

  it('distill student train --init --init-layers trains the pruned checkpoint as its own student', async () => {
    const { hf, data } = await setup();
    const out = tmp('cli');
    const args = ['student', 'train', '--data', data, '--steps', '1', '--batch-size', '2', '--lr', '1e-3'];
    const r = await distillAsync([
      ...args,
      '--seed',
      '1',
      '--out',
      out,
      '--init',
      hf,
      '--init-layers',
      '0,1',
      '--json',
    ]);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    const name = path.basename(hf);
    expect(r.json().students[0].name).toBe(name);
    const cfg = JSON.parse(readFileSync(path.join(out, name, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ nLayers: 2, dModel: 24, nKvHeads: 2, ropeTheta: 500 });
    const bad = await distillAsync([...args, '--seed', '1', '--out', tmp('cli'), '--init', hf, '--init-layers', '0,7']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/layer 7 does not exist in .*config\.json: expected layer indices 0…2/);
    const none = await distillAsync([...args, '--seed', '1', '--out', tmp('cli')]);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/\[E_USAGE\] no student to train/);
  }, 300_000);
});
