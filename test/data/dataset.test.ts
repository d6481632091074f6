// Token datasets: text and JSONL corpora → fixed-length sequences with end-of-text separators, the
// validation split, content hashes, and the checks openTokenDataset makes.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { tableFromIPC } from 'apache-arrow';
import {
  byteTokenizer,
  openTokenDataset,
  prepareDataset,
  tokenDatasetHash,
  writeTokenDataset,
} from '../../src/data/index.js';
import { distillAsync } from '../helpers/cli.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'distill-data-'));

describe('prepareDataset', () => {
  it('concatenates documents with end-of-text, cuts T-token sequences and drops the remainder', async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'a.txt'), 'abcdef');
    writeFileSync(path.join(dir, 'b.jsonl'), '{"text":"gh"}\n\n{"text":"ijk","id":2}\n');
    const out = path.join(dir, 'tok.arrow');
    const res = await prepareDataset({
      text: [path.join(dir, 'a.txt'), path.join(dir, 'b.jsonl')],
      tokenizer: 'byte',
      seqLen: 4,
      out,
    });
    // abcdef⏚ gh⏚ ijk⏚ = 14 tokens → 3 sequences, 2 dropped
    expect(res).toMatchObject({ documents: 3, tokens: 14, droppedTokens: 2, seqLen: 4 });
    const ds = await openTokenDataset(out);
    expect(ds.numSequences).toBe(3);
    expect(ds.sha256).toBe(res.train.sha256);
    const E = 256;
    const c = (s: string) => [...Buffer.from(s)];
    expect(Array.from(ds.tokens)).toEqual([...c('abcdef'), E, ...c('gh'), E, ...c('ijk')].slice(0, 12));
    expect(Array.from(ds.sequence(1))).toEqual([...c('ef'), E, ...c('g')]);
    expect(ds).toMatchObject({
      seqLen: 4,
      vocabSize: 257,
      eotId: 256,
      tokenizer: { name: 'byte', sha256: byteTokenizer().sha256 },
      split: 'train',
    });
  });

  it('holds out every ⌈1/f⌉-th sequence as <out>.val.arrow; hashes are stable across runs and differ between splits', async () => {
    const dir = tmp();
    const corpus = path.resolve('fixtures/corpus/ruth.txt');
    const out = path.join(dir, 'ruth.arrow');
    const r1 = await prepareDataset({ text: [corpus], tokenizer: 'byte', seqLen: 64, out, valFraction: 0.1 });
    const all = readFileSync(corpus).length + 1;
    const n = Math.floor(all / 64);
    expect(r1.val!.numSequences).toBe(Math.floor(n / 10));
    expect(r1.train.numSequences + r1.val!.numSequences).toBe(n);
    expect(r1.val!.path).toBe(path.join(dir, 'ruth.val.arrow'));
    const val = await openTokenDataset(r1.val!.path);
    expect(val.split).toBe('val');
    const bytes = readFileSync(corpus);
    expect(Buffer.from(Uint8Array.from(val.sequence(0))).equals(bytes.subarray(9 * 64, 10 * 64))).toBe(true);
    const r2 = await prepareDataset({
      text: [corpus],
      tokenizer: 'byte',
      seqLen: 64,
      out: path.join(dir, 'again.arrow'),
      valFraction: 0.1,
    });
    expect(r2.train.sha256).toBe(r1.train.sha256);
    expect(r2.val!.sha256).not.toBe(r1.train.sha256);
  });

  it('fails clearly on a corpus too small for one sequence, a JSONL line without the field, and a missing file', async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'tiny.txt'), 'ab');
    await expect(
      prepareDataset({
        text: [path.join(dir, 'tiny.txt')],
        tokenizer: 'byte',
        seqLen: 8,
        out: path.join(dir, 'o.arrow'),
      }),
    ).rejects.toMatchObject({ code: 'E_DATA' });
    writeFileSync(path.join(dir, 'x.jsonl'), '{"text":"fine"}\n{"body":"no"}\n');
    await expect(
      prepareDataset({
        text: [path.join(dir, 'x.jsonl')],
        tokenizer: 'byte',
        seqLen: 2,
        out: path.join(dir, 'o.arrow'),
      }),
    ).rejects.toThrow(/line 2 of .*x\.jsonl has no text field "text"/);
    await expect(
      prepareDataset({
        text: [path.join(dir, 'missing.txt')],
        tokenizer: 'byte',
        seqLen: 2,
        out: path.join(dir, 'o.arrow'),
      }),
    ).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });
});

describe('openTokenDataset', () => {
  it('rejects a file whose tokens were altered after writing, and one that is not a dataset', async () => {
    const dir = tmp();
    const f = path.join(dir, 'd.arrow');
    const tokens = Uint32Array.from({ length: 32 }, (_, i) => i);
    writeTokenDataset(
      f,
      { seqLen: 8, vocabSize: 257, eotId: 256, tokenizer: { name: 'byte', sha256: 'x' }, split: 'train' },
      tokens,
    );
    const buf = readFileSync(f);
    const at = buf.indexOf(Buffer.from(Uint32Array.from([5, 6, 7]).buffer));
    expect(at).toBeGreaterThan(0);
    buf.writeUInt32LE(99, at);
    writeFileSync(f, buf);
    await expect(openTokenDataset(f)).rejects.toThrow(/does not match its recorded hash/);
    writeFileSync(f, 'not arrow');
    await expect(openTokenDataset(f)).rejects.toMatchObject({ code: 'E_DATA' });
  });
});

describe('loss masks (version 2)', () => {
  const header = { seqLen: 4, vocabSize: 257, eotId: 256, tokenizer: { name: 'byte', sha256: 'x' } };
  const tokens = Uint32Array.from({ length: 8 }, (_, i) => 97 + i);
  const canonical = (version: number) =>
    `{"eotId":256,"format":"distillery.token-dataset","seqLen":4,"tokenizer":{"name":"byte","sha256":"x"},"version":${version},"vocabSize":257}`;

  it('hashes as version 1 did without a mask, and covers the mask with one', () => {
    const sha = (...parts: Uint8Array[]) => {
      const h = createHash('sha256');
      for (const p of parts) h.update(p);
      return h.digest('hex');
    };
    const tokBytes = new Uint8Array(tokens.buffer);
    expect(tokenDatasetHash(header, tokens)).toBe(sha(Buffer.from(canonical(1)), tokBytes));
    const mask = Uint8Array.from([0, 0, 1, 1, 0, 1, 1, 0]);
    expect(tokenDatasetHash(header, tokens, mask)).toBe(sha(Buffer.from(canonical(2)), tokBytes, mask));
    const other = Uint8Array.from([0, 0, 1, 1, 0, 1, 0, 0]);
    expect(tokenDatasetHash(header, tokens, other)).not.toBe(tokenDatasetHash(header, tokens, mask));
  });

  it('writes a loss_mask column and version 2, reads it back, and refuses a mask altered after writing', async () => {
    const dir = tmp();
    const f = path.join(dir, 'm.arrow');
    const mask = Uint8Array.from([0, 0, 1, 1, 0, 1, 1, 0]);
    const w = writeTokenDataset(f, { ...header, split: 'train' }, tokens, mask);
    expect(w.scoredPositions).toBe(4);
    const ds = await openTokenDataset(f);
    expect(ds.sha256).toBe(w.sha256);
    expect(Array.from(ds.lossMask!)).toEqual(Array.from(mask));
    expect(Array.from(ds.sequenceMask(1)!)).toEqual([0, 1, 1, 0]);
    expect(ds.scoredPositions).toBe(4);
    const table = tableFromIPC(readFileSync(f));
    expect(table.schema.metadata.get('distillery.version')).toBe('2');
    expect(String(table.schema.fields[1]?.type)).toBe('FixedSizeList[4]<Uint8>');
    const plain = await openTokenDataset(
      (writeTokenDataset(path.join(dir, 'p.arrow'), { ...header, split: 'train' }, tokens), path.join(dir, 'p.arrow')),
    );
    expect(plain.lossMask).toBeUndefined();
    expect(plain.sequenceMask(0)).toBeUndefined();
    expect(plain.scoredPositions).toBe(8);
    // Flip one mask byte in the file: the recorded hash no longer matches.
    const buf = readFileSync(f);
    const at = buf.indexOf(Buffer.from(mask));
    expect(at).toBeGreaterThan(0);
    buf[at] = 1;
    writeFileSync(f, buf);
    await expect(openTokenDataset(f)).rejects.toThrow(/does not match its recorded hash/);
  });
});

describe('distill data prepare', () => {
  it('writes train and validation splits and prints a JSON summary', async () => {
    const dir = tmp();
    const out = path.join(dir, 'p.arrow');
    const r = await distillAsync([
      'data',
      'prepare',
      '--text',
      'fixtures/corpus/proverbs.jsonl',
      '--seq-len',
      '128',
      '--out',
      out,
      '--val-fraction',
      '0.05',
      '--json',
    ]);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    const j = r.json();
    expect(j.documents).toBe(31);
    expect(j.val.numSequences).toBeGreaterThan(0);
    const bad = await distillAsync([
      'data',
      'prepare',
      '--text',
      path.join(dir, 'none.txt'),
      '--seq-len',
      '8',
      '--out',
      out,
    ]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/\[E_NOT_FOUND\] text file not found/);
    expect(bad.stderr).not.toMatch(/at .*\.js:\d+/);
  }, 300_000);
});
