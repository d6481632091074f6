// `distill demo --budget small` through the CLI: every phase runs on the embedded fixtures, and the outputs
// agree with each other (summary.json ↔ eval.json ↔ the --json summary ↔ report.md); the cache has the teacher
// runner's default shard count and the packed encoding, and the trainer's block-shuffled reading mixes many shards
// in every batch.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openTokenDataset } from '../../src/data/index.js';
import type { DemoResult } from '../../src/demo/index.js';
import type { ReportSummary } from '../../src/eval/index.js';
import { openCache } from '../../src/store/index.js';
import { openCacheBatches } from '../../src/student/cache-batches.js';
import { defaultShardCount } from '../../src/teacher/index.js';
import { distillAsync } from '../helpers/cli.js';

describe('distill demo (small budget)', () => {
  it('prepares, caches, trains 3 distilled students + a baseline, evaluates and reports', async () => {
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'distill-demo-')), 'demo');
    const r = await distillAsync(['demo', '--out', out, '--budget', 'small', '--json'], { timeoutMs: 240_000 });
    expect(r.status, r.stderr).toBe(0);
    const res = r.json() as DemoResult;
    expect(res.budget).toBe('small');
    for (const f of ['html', 'markdown', 'summary'] as const)
      expect(existsSync(res.report[f]), res.report[f]).toBe(true);
    expect(res.report.html).toBe(path.join(out, 'report', 'report.html'));

    const summary = JSON.parse(readFileSync(res.report.summary, 'utf8')) as ReportSummary;
    expect(summary.students.length).toBeGreaterThanOrEqual(4);
    expect(summary.students.filter((s) => s.baseline)).toHaveLength(1);
    expect(res.students.filter((s) => !s.baseline).map((s) => s.schedule)).toContain('hard-to-soft');
    expect(new Set(res.students.filter((s) => !s.baseline).map((s) => s.params)).size).toBeGreaterThanOrEqual(3);
    for (const s of res.students) {
      const ev = JSON.parse(readFileSync(path.join(s.dir, 'eval.json'), 'utf8'));
      const row = summary.students.find((x) => x.name === s.name);
      expect(row, s.name).toBeDefined();
      expect(row!.heldOutCE).toBeCloseTo(ev.heldOutCE, 9);
      expect(s.heldOutCE).toBeCloseTo(ev.heldOutCE, 9);
      expect(row!.baseline).toBe(s.baseline);
      expect(ev.teacher.heldOutCE).toBeCloseTo(res.teacher.heldOutCE, 9);
      expect(Number.isFinite(ev.klToTeacher)).toBe(true);
      expect(readFileSync(path.join(s.dir, 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(res.recipe.steps);
    }
    expect(summary.teacher!.heldOutCE).toBeCloseTo(res.teacher.heldOutCE, 9);
    expect(summary.cache!.bytesPerPosition).toBeCloseTo(res.cache.bytes / res.cache.positions, 6);
    const kd = res.students.filter((s) => !s.baseline);
    const bestKd = kd.reduce((a, b) => (b.heldOutCE < a.heldOutCE ? b : a));
    const base = res.students.find((s) => s.baseline)!;
    expect(res.best.distilled).toBe(bestKd.name);
    expect(res.best.ceGainOverBaseline).toBeCloseTo(base.heldOutCE - bestKd.heldOutCE, 9);
    expect(res.best.distillationWins).toBe(base.heldOutCE > bestKd.heldOutCE);
    const md = readFileSync(res.report.markdown, 'utf8');
    for (const s of res.students) expect(md).toContain(s.name);
    expect(readFileSync(res.report.html, 'utf8')).toContain('<svg');

    // The runner's default shards (a few large ones), read block-shuffled: a batch mixes many shards.
    const reader = await openCache(res.cache.uri);
    const shardOf = new Map<number, number>();
    for await (const q of reader.sequences({ seed: 0, epoch: 0 })) shardOf.set(q.seq, q.shard);
    const numShards = reader.manifest.numShards;
    // The encoding docs/quality.md supports: packed top-k (format v2).
    expect(reader.manifest.inputs.encodings.logp).toBe('packed');
    expect(reader.manifest.formatVersion).toBe(2);
    await reader.close();
    expect(numShards).toBe(defaultShardCount(res.data.trainSequences, res.data.seqLen));
    expect(res.data.trainSequences / numShards).toBeGreaterThan(8);
    const ds = await openTokenDataset(res.data.train);
    const cursor = { seed: res.recipe.seed, epoch: 0, position: 0 };
    const src = await openCacheBatches(res.cache.uri, ds, 8, cursor, { shuffleBlockRows: res.recipe.shuffleBlockRows });
    const perBatch: number[] = [];
    for (let i = 0; i < Math.floor(ds.numSequences / 8); i++)
      perBatch.push(new Set((await src.next()).seqs.map((q) => shardOf.get(q))).size);
    await src.close?.();
    // In file order a batch of 8 from shards of more than 8 sequences touches one or two shards.
    expect(perBatch.reduce((a, b) => a + b, 0) / perBatch.length).toBeGreaterThan(5);
    const state = JSON.parse(readFileSync(path.join(res.students[0]!.dir, 'trainer-state.json'), 'utf8'));
    expect(state.cursor.source.shuffleBlockRows).toBe(res.recipe.shuffleBlockRows);

    // A second run into the same folder is refused (naming the folder) unless --force.
    const again = await distillAsync(['demo', '--out', out, '--budget', 'small']);
    expect(again.status).not.toBe(0);
    expect(again.stderr).toContain(out);
    expect(again.stderr).toContain('--force');
  }, 300_000);
});
