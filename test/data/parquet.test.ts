// Parquet input: files written by polars (as Hugging Face datasets ship them) give the same token datasets as
// the same records in JSONL, for text and for chat columns; a missing column or a null row is named.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pl from 'nodejs-polars';
import { describe, expect, it } from 'vitest';
import { openTokenDataset, prepareDataset } from '../../src/data/index.js';
import { distillAsync } from '../helpers/cli.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'distill-parquet-'));

/** Writes records to JSONL and, through polars (nested columns inferred from the JSON), to Parquet. */
function writeBoth(dir: string, name: string, records: object[]): { jsonl: string; parquet: string } {
  const ndjson = records.map((r) => JSON.stringify(r)).join('\n');
  const jsonl = path.join(dir, `${name}.jsonl`);
  writeFileSync(jsonl, ndjson);
  const parquet = path.join(dir, `${name}.parquet`);
  pl.readJSON(Buffer.from(ndjson), { format: 'lines' }).writeParquet(parquet);
  return { jsonl, parquet };
}

describe('Parquet input', () => {
  it('a text column gives the same dataset (and hash) as the same rows in JSONL; empty strings are skipped', async () => {
    const dir = tmp();
    const rows = ['In the beginning', '', 'God created the heaven and the earth.', 'And the earth was without form'];
    const { jsonl, parquet } = writeBoth(
      dir,
      'gen',
      rows.map((body, id) => ({ id, body })),
    );
    const opts = { tokenizer: 'byte', seqLen: 8, column: 'body' };
    const a = await prepareDataset({ ...opts, text: [parquet], out: path.join(dir, 'a.arrow') });
    const b = await prepareDataset({ ...opts, text: [jsonl], out: path.join(dir, 'b.arrow') });
    expect(a.documents).toBe(3);
    expect(a.train.sha256).toBe(b.train.sha256);
    const ds = await openTokenDataset(path.join(dir, 'a.arrow'));
    const c = (s: string) => [...Buffer.from(s)];
    const stream = [...c(rows[0]!), 256, ...c(rows[2]!), 256, ...c(rows[3]!), 256];
    expect(Array.from(ds.tokens)).toEqual(stream.slice(0, Math.floor(stream.length / 8) * 8));
    expect(ds.lossMask).toBeUndefined();
  });

  it('a list<struct<role, content>> column is read as chat messages, like JSONL', async () => {
    const dir = tmp();
    const messages = [
      { role: 'user', content: 'ab' },
      { role: 'assistant', content: 'cd' },
    ];
    const { jsonl, parquet } = writeBoth(dir, 'chat', [{ messages }, { messages }, { messages }]);
    const tpl = path.join(dir, 't.jinja');
    writeFileSync(tpl, '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}');
    const opts = { tokenizer: 'byte', seqLen: 8, format: 'chat' as const, chatTemplate: tpl };
    const a = await prepareDataset({ ...opts, text: [parquet], out: path.join(dir, 'a.arrow') });
    const b = await prepareDataset({ ...opts, text: [jsonl], out: path.join(dir, 'b.arrow') });
    expect(a).toMatchObject({ documents: 3, lossMask: true });
    expect(a.train.sha256).toBe(b.train.sha256);
    expect(a.train.scoredPositions).toBeGreaterThan(0);
  });

  it('fails naming the file: no such column (listing the columns), a null row, not Parquet at all', async () => {
    const dir = tmp();
    const { parquet } = writeBoth(dir, 'x', [{ text: 'fine' }, { text: null }]);
    const opts = { tokenizer: 'byte', seqLen: 2, out: path.join(dir, 'o.arrow') };
    await expect(prepareDataset({ ...opts, text: [parquet], column: 'content' })).rejects.toMatchObject({
      code: 'E_DATA',
      message: expect.stringMatching(new RegExp(`Parquet file ${parquet} has no column "content".*got columns text`)),
    });
    await expect(prepareDataset({ ...opts, text: [parquet] })).rejects.toThrow(
      new RegExp(`row 2 of ${parquet} has no text field "text"`),
    );
    const fake = path.join(dir, 'fake.parquet');
    writeFileSync(fake, 'not parquet at all');
    await expect(prepareDataset({ ...opts, text: [fake] })).rejects.toThrow(/cannot read Parquet file .*fake\.parquet/);
  });

  it('distill data prepare --column reads a Parquet column and names a missing one on stderr', async () => {
    const dir = tmp();
    const { parquet } = writeBoth(
      dir,
      'p',
      Array.from({ length: 20 }, (_, i) => ({ passage: `verse ${i} of the book` })),
    );
    const base = ['data', 'prepare', '--text', parquet, '--seq-len', '16', '--out', path.join(dir, 'o.arrow')];
    const r = await distillAsync([...base, '--column', 'passage', '--json']);
    expect(r.status).toBe(0);
    expect(r.json()).toMatchObject({ documents: 20, lossMask: false });
    const bad = await distillAsync(base);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/\[E_DATA\] Parquet file .*p\.parquet has no column "text".*got columns passage/);
  }, 300_000);
});
