// Loss masks through the logit cache: the teacher runner writes rows only for scored positions (the cache
// shrinks to them, with the same values as a full cache of the same tokens), the fingerprint differs from the
// unmasked dataset's, and the trainer and the evaluator read the masked cache back at the right positions.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openTokenDataset, prepareDataset, writeTokenDataset } from '../../src/data/index.js';
import { evaluateCheckpoint } from '../../src/eval/evaluate.js';
import { openCache } from '../../src/store/index.js';
import { openCacheBatches } from '../../src/student/cache-batches.js';
import { trainStudents } from '../../src/student/train.js';
import { runTeacher } from '../../src/teacher/index.js';
import { tinyStudent } from './helpers/tiny-student.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'distill-mask-cache-'));
const TEACHER = path.resolve('fixtures/teacher/model.onnx');
const T = 32;

/** A chat dataset (byte tokenizer, a plain template) and the same tokens without a mask. */
async function datasets(dir: string) {
  const tpl = path.join(dir, 't.jinja');
  writeFileSync(tpl, '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}');
  const chats = path.join(dir, 'c.jsonl');
  const lines = Array.from({ length: 12 }, (_, i) =>
    JSON.stringify({
      messages: [
        { role: 'user', content: `Who begat number ${i}?` },
        { role: 'assistant', content: `And Boaz begat Obed, verse ${i}.` },
      ],
    }),
  );
  writeFileSync(chats, lines.join('\n'));
  const masked = path.join(dir, 'masked.arrow');
  await prepareDataset({ text: [chats], format: 'chat', chatTemplate: tpl, tokenizer: 'byte', seqLen: T, out: masked });
  const m = await openTokenDataset(masked);
  const plain = path.join(dir, 'plain.arrow');
  writeTokenDataset(plain, { seqLen: T, vocabSize: 257, eotId: 256, tokenizer: m.tokenizer, split: 'train' }, m.tokens);
  return { masked, plain, m };
}

describe('a logit cache of a masked dataset', () => {
  it('holds exactly the scored positions, with the values of the full cache; trains and evaluates', async () => {
    const dir = tmp();
    const { masked, plain, m } = await datasets(dir);
    const mask = m.lossMask!;
    expect(m.scoredPositions).toBeGreaterThan(0);
    expect(m.scoredPositions).toBeLessThan(mask.length / 2);
    const opts = { model: TEACHER, topK: 4, shards: 3, workers: 1 };
    await runTeacher({ ...opts, data: masked, out: path.join(dir, 'cm') });
    await runTeacher({ ...opts, data: plain, out: path.join(dir, 'cu') });
    const cm = await openCache(path.join(dir, 'cm'));
    const cu = await openCache(path.join(dir, 'cu'));
    try {
      expect(cm.manifest.rows).toBe(m.scoredPositions);
      expect(cu.manifest.rows).toBe(mask.length);
      expect(cm.manifest.inputs.dataset.scoredPositions).toBe(m.scoredPositions);
      expect(cu.manifest.inputs.dataset.scoredPositions).toBeUndefined();
      expect(cm.manifest.fingerprint).not.toBe(cu.manifest.fingerprint);
      expect(cm.manifest.bytes).toBeLessThan(cu.manifest.bytes / 2);
      // Every full-cache row, by (seq, pos); the masked rows must be exactly the scored ones, with equal values.
      const full = new Map<number, { ids: number[]; logp: number[] }>();
      for await (const s of cu.sequences({ seed: 0, epoch: 0 }))
        s.rows.pos.forEach((p, i) =>
          full.set(s.seq * T + p, {
            ids: Array.from(s.rows.ids.subarray(i * 4, i * 4 + 4)),
            logp: Array.from(s.rows.logp.subarray(i * 4, i * 4 + 4)),
          }),
        );
      const seen: number[] = [];
      for await (const s of cm.sequences({ seed: 0, epoch: 0 }))
        s.rows.pos.forEach((p, i) => {
          const at = s.seq * T + p;
          seen.push(at);
          expect(Array.from(s.rows.ids.subarray(i * 4, i * 4 + 4))).toEqual(full.get(at)?.ids);
          expect(Array.from(s.rows.logp.subarray(i * 4, i * 4 + 4))).toEqual(full.get(at)?.logp);
        });
      expect(seen.sort((a, b) => a - b)).toEqual(Array.from(mask).flatMap((x, i) => (x ? [i] : [])));
    } finally {
      await cm.close();
      await cu.close();
    }

    // The trainer's batches put the rows at their positions; elsewhere labels are −100 and the teacher is padding.
    const ds = await openTokenDataset(masked);
    const src = await openCacheBatches(path.join(dir, 'cm'), ds, 2, { seed: 1, epoch: 0, position: 0 });
    const batch = await src.next();
    await src.close?.();
    const teacher = batch.teacher!;
    batch.seqs.forEach((seq, b) => {
      for (let t = 0; t < T; t++) {
        const scored = mask[seq * T + t] === 1;
        expect(batch.labels[b * T + t] !== -100).toBe(scored && t < T - 1);
        const lp = teacher.logp[(b * T + t) * 4]!;
        expect(Number.isFinite(lp)).toBe(scored);
      }
    });

    const config = tinyStudent(257, T);
    const out = path.join(dir, 'run');
    const res = await trainStudents({
      students: [{ name: 's', config }],
      data: masked,
      cache: path.join(dir, 'cm'),
      steps: 3,
      batchSize: 2,
      lr: 1e-2,
      seed: 2,
      out,
    });
    expect(Number.isFinite(res.students[0]!.last!.loss)).toBe(true);
    expect(res.students[0]!.last!.softLoss).toBeGreaterThan(0);
    const ev = await evaluateCheckpoint({
      checkpoint: path.join(out, 's'),
      data: masked,
      cache: path.join(dir, 'cm'),
      write: false,
    });
    expect(Number.isFinite(ev.klToTeacher)).toBe(true);
    expect(ev.positions).toBeLessThan(m.scoredPositions);
  }, 300_000);
});
