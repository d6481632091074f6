// Loss masks downstream of the dataset: masked positions get label −100, so the trainer and the evaluator
// ignore them. Two datasets that differ only in the last token of every sequence — the target of position
// T−2 and an input only to position T−1 — train and evaluate identically when the mask leaves position T−2
// out, and differently when it does not.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { assembleTokens, openTokenDataset, writeTokenDataset } from '../../src/data/index.js';
import { evaluateCheckpoint } from '../../src/eval/evaluate.js';
import { trainStudents } from '../../src/student/train.js';
import { tinyStudent } from './helpers/tiny-student.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'distill-mask-'));
const N = 6;
const T = 8;
const V = 11;
const config = tinyStudent(V, T);

/** Tokens with a learnable pattern; `last` replaces each sequence's final token. */
function tokens(last: (s: number) => number): Uint32Array {
  const out = new Uint32Array(N * T);
  for (let s = 0; s < N; s++) for (let t = 0; t < T; t++) out[s * T + t] = t === T - 1 ? last(s) : (s * 3 + t * 2) % V;
  return out;
}

/** Scores positions 1…T−3 (so not T−2, whose target is the last token). */
const mask = Uint8Array.from({ length: N * T }, (_, i) => (i % T >= 1 && i % T <= T - 3 ? 1 : 0));

function dataset(dir: string, name: string, toks: Uint32Array, m?: Uint8Array): string {
  const file = path.join(dir, `${name}.arrow`);
  const header = {
    seqLen: T,
    vocabSize: V,
    eotId: 0,
    tokenizer: { name: 'test', sha256: 'c'.repeat(64) },
    split: 'train',
  };
  writeTokenDataset(file, header, toks, m);
  return file;
}

async function trainAndEval(data: string): Promise<{ losses: number[]; ce: number; positions: number }> {
  const out = tmp();
  await trainStudents({
    students: [{ name: 's', config }],
    data,
    steps: 4,
    batchSize: 2,
    lr: 1e-2,
    seed: 5,
    out,
    backend: 'reference',
  });
  const losses = readFileSync(path.join(out, 's', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).loss as number);
  const ev = await evaluateCheckpoint({ checkpoint: path.join(out, 's'), data, backend: 'reference', write: false });
  return { losses, ce: ev.heldOutCE, positions: ev.positions };
}

describe('loss masks in training and evaluation', () => {
  it('labels are −100 wherever the mask is 0 (and at the last position)', async () => {
    const dir = tmp();
    const ds = await openTokenDataset(
      dataset(
        dir,
        'a',
        tokens(() => 1),
        mask,
      ),
    );
    const { labels } = assembleTokens(ds, [0, 1]);
    const scored = Array.from(labels).flatMap((y, i) => (y !== -100 ? [i % T] : []));
    expect(scored).toEqual([1, 2, 3, 4, 5, 1, 2, 3, 4, 5]);
  });

  it('masked-out targets change nothing; the same change without the mask does', async () => {
    const dir = tmp();
    const a = await trainAndEval(
      dataset(
        dir,
        'a',
        tokens(() => 1),
        mask,
      ),
    );
    const b = await trainAndEval(
      dataset(
        dir,
        'b',
        tokens((s) => (s + 5) % V),
        mask,
      ),
    );
    expect(b.losses).toEqual(a.losses);
    expect(b.ce).toBe(a.ce);
    expect(a.positions).toBe(N * 5);
    const c = await trainAndEval(
      dataset(
        dir,
        'c',
        tokens(() => 1),
      ),
    );
    const d = await trainAndEval(
      dataset(
        dir,
        'd',
        tokens((s) => (s + 5) % V),
      ),
    );
    expect(d.losses).not.toEqual(c.losses);
    expect(c.positions).toBe(N * (T - 1));
  }, 120_000);
});
