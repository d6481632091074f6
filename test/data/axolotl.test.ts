// cache export --format axolotl: polars reads the Parquet files back and every row is checked against the cache
// and the token dataset — input_ids, labels (unshifted, −100 where nothing is scored), target rows renormalized
// over the top-k with mask 1, padding rows (id j, −1e9, mask 0) at unscored positions and at the last one.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pl from 'nodejs-polars';
import { describe, expect, it } from 'vitest';
import { exportAxolotl, openTokenDataset, prepareDataset, type TokenDataset } from '../../src/data/index.js';
import { openCache } from '../../src/store/index.js';
import { runTeacher } from '../../src/teacher/index.js';
import { distillAsync } from '../helpers/cli.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'distill-axolotl-'));
const TEACHER = path.resolve('fixtures/teacher/model.onnx');
const T = 32;
const K = 4;

interface Exported {
  input_ids: number[];
  attention_mask: number[];
  labels: number[];
  target_token_ids: number[][];
  target_logprobs: number[][];
  target_mask: number[][];
}

/** Every row of every part file, read by polars, keyed by the sequence its input_ids are. */
function readExport(dir: string): Exported[] {
  const rows: Exported[] = [];
  for (const f of readdirSync(dir)
    .filter((n) => n.endsWith('.parquet'))
    .sort()) {
    const df = pl.readParquet(readFileSync(path.join(dir, f)));
    expect(df.columns).toEqual([
      'input_ids',
      'attention_mask',
      'labels',
      'target_token_ids',
      'target_logprobs',
      'target_mask',
    ]);
    rows.push(...(df.toRecords() as unknown as Exported[]));
  }
  return rows;
}

/** Checks each exported row against the cache rows of its sequence; returns the scored positions seen. */
async function checkAgainstCache(cacheDir: string, ds: TokenDataset, rows: Exported[]): Promise<number> {
  const bySeq = new Map<string, Exported>(rows.map((r) => [r.input_ids.join(','), r]));
  const cache = await openCache(cacheDir);
  let scored = 0;
  let matched = 0;
  try {
    for await (const s of cache.sequences({ seed: 0, epoch: 0 })) {
      const tokens = Array.from(ds.sequence(s.seq));
      const row = bySeq.get(tokens.join(','));
      const cached = new Map(Array.from(s.rows.pos, (p, i) => [p, i]));
      if (![...cached.keys()].some((p) => p < T - 1)) {
        expect(row).toBeUndefined();
        continue;
      }
      expect(row).toBeDefined();
      if (!row) continue;
      matched++;
      expect(row.attention_mask).toEqual(new Array(T).fill(1));
      for (let p = 0; p < T; p++) {
        const i = cached.get(p);
        const live = i !== undefined && p < T - 1;
        expect(row.labels[p + 1 < T ? p + 1 : 0]).toBe(p + 1 < T && live ? tokens[p + 1] : -100);
        if (!live) {
          expect(row.target_token_ids[p]).toEqual([0, 1, 2, 3]);
          expect(row.target_logprobs[p]).toEqual([-1e9, -1e9, -1e9, -1e9].map(Math.fround));
          expect(row.target_mask[p]).toEqual([0, 0, 0, 0]);
          continue;
        }
        scored++;
        const logp = Array.from(s.rows.logp.subarray(i * K, (i + 1) * K));
        const lse = Math.log(logp.reduce((a, x) => a + Math.exp(x), 0));
        expect(row.target_token_ids[p]).toEqual(Array.from(s.rows.ids.subarray(i * K, (i + 1) * K)));
        row.target_logprobs[p]!.forEach((x, j) => expect(x).toBeCloseTo(logp[j]! - lse, 5));
        expect(row.target_mask[p]).toEqual([1, 1, 1, 1]);
        // Renormalized over the top-k: the probabilities sum to 1.
        expect(row.target_logprobs[p]!.reduce((a, x) => a + Math.exp(x), 0)).toBeCloseTo(1, 5);
      }
      expect(row.labels[0]).toBe(-100);
    }
  } finally {
    await cache.close();
  }
  expect(matched).toBe(rows.length);
  return scored;
}

describe('cache export --format axolotl', () => {
  it('a full cache: one row per sequence, every position but the last a target', async () => {
    const dir = tmp();
    const data = path.join(dir, 'ruth.arrow');
    await prepareDataset({ text: ['fixtures/corpus/ruth.txt'], tokenizer: 'byte', seqLen: T, out: data });
    const ds = await openTokenDataset(data);
    await runTeacher({ model: TEACHER, data, out: path.join(dir, 'cache'), topK: K, shards: 3, workers: 1 });
    const out = path.join(dir, 'kd');
    const res = await exportAxolotl({ cache: path.join(dir, 'cache'), data, out });
    expect(res.files.length).toBe(3);
    expect(res).toMatchObject({
      sequences: ds.numSequences,
      scoredPositions: ds.numSequences * (T - 1),
      k: K,
      temperature: 1,
    });
    const rows = readExport(out);
    expect(rows.length).toBe(ds.numSequences);
    expect(await checkAgainstCache(path.join(dir, 'cache'), ds, rows)).toBe(ds.numSequences * (T - 1));
  }, 300_000);

  it('a masked cache: targets only where the loss mask scores; the CLI needs --data', async () => {
    const dir = tmp();
    const tpl = path.join(dir, 't.jinja');
    writeFileSync(tpl, '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}');
    const chats = path.join(dir, 'c.jsonl');
    writeFileSync(
      chats,
      Array.from({ length: 10 }, (_, i) =>
        JSON.stringify({
          messages: [
            { role: 'user', content: `Say ${i}.` },
            { role: 'assistant', content: `I say ${i} and more.` },
          ],
        }),
      ).join('\n'),
    );
    const data = path.join(dir, 'chat.arrow');
    await prepareDataset({ text: [chats], format: 'chat', chatTemplate: tpl, tokenizer: 'byte', seqLen: T, out: data });
    const ds = await openTokenDataset(data);
    await runTeacher({ model: TEACHER, data, out: path.join(dir, 'cache'), topK: K, shards: 2, workers: 1 });
    const out = path.join(dir, 'kd');
    const r = await distillAsync([
      'cache',
      'export',
      path.join(dir, 'cache'),
      '--format',
      'axolotl',
      '--data',
      data,
      '--out',
      out,
      '--json',
    ]);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    const rows = readExport(out);
    const scored = await checkAgainstCache(path.join(dir, 'cache'), ds, rows);
    let expected = 0;
    for (let s = 0; s < ds.numSequences; s++)
      ds.sequenceMask(s)!.forEach((m, p) => (expected += m === 1 && p < T - 1 ? 1 : 0));
    expect(scored).toBe(expected);
    expect(r.json()).toMatchObject({ scoredPositions: expected });
    const bad = await distillAsync(['cache', 'export', path.join(dir, 'cache'), '--format', 'axolotl', '--out', tmp()]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/\[E_USAGE\] --format axolotl needs --data/);
  }, 300_000);
});
