// `data prepare`: text files (one document each) or JSONL (one document per line, in a text field)
// → token stream doc₁ EOT doc₂ EOT … cut into fixed-length sequences of T tokens → Arrow datasets.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { DistillError } from '../core/errors.js';
import type { ProgressFn } from '../core/types.js';
import { writeTokenDataset } from './dataset.js';
import { loadTokenizer } from './tokenizer.js';

export interface PrepareOptions {
  /** Input files: .jsonl/.ndjson are read line by line (field `textField`); anything else is one document. */
  text: string[];
  /** "byte", a tokenizer.json, or a model folder. */
  tokenizer: string;
  seqLen: number;
  /** The training split's path; the validation split goes beside it as <name>.val.arrow. */
  out: string;
  /** Fraction of sequences held out for validation (every ⌈1/f⌉-th sequence), default 0. */
  valFraction?: number;
  textField?: string;
  onProgress?: ProgressFn;
}

export interface PreparedSplit {
  path: string;
  sha256: string;
  numSequences: number;
  bytes: number;
}

export interface PrepareResult {
  train: PreparedSplit;
  val?: PreparedSplit;
  tokenizer: { name: string; sha256: string; vocabSize: number; eotId: number };
  seqLen: number;
  documents: number;
  /** Tokens including one end-of-text per document. */
  tokens: number;
  /** Tokens after the last whole sequence, which are dropped. */
  droppedTokens: number;
}

/** The validation split's path for a training split path. */
export function valPathFor(out: string): string {
  return out.endsWith('.arrow') ? `${out.slice(0, -'.arrow'.length)}.val.arrow` : `${out}.val.arrow`;
}

function readDocuments(file: string, textField: string): string[] {
  if (!existsSync(file) || !statSync(file).isFile())
    throw new DistillError('E_NOT_FOUND', `text file not found: ${file}`, { subject: file });
  const raw = readFileSync(file, 'utf8');
  if (!/\.(jsonl|ndjson)$/i.test(file)) return raw.length ? [raw] : [];
  const docs: string[] = [];
  const lines = raw.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    let rec: any;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      throw new DistillError('E_DATA', `invalid JSON on line ${i + 1} of ${file}`, {
        found: (e as Error).message,
        subject: `${file}:${i + 1}`,
      });
    }
    const t = rec?.[textField];
    if (typeof t !== 'string') {
      throw new DistillError('E_DATA', `line ${i + 1} of ${file} has no text field "${textField}"`, {
        expected: `a string field "${textField}"`,
        found: rec && typeof rec === 'object' ? `fields ${Object.keys(rec).join(', ')}` : typeof rec,
        hint: 'pass --text-field <name>',
        subject: `${file}:${i + 1}`,
      });
    }
    if (t.length) docs.push(t);
  }
  return docs;
}

export async function prepareDataset(opts: PrepareOptions): Promise<PrepareResult> {
  const T = opts.seqLen;
  const f = opts.valFraction ?? 0;
  if (!Number.isInteger(T) || T < 2)
    throw new DistillError('E_USAGE', 'invalid sequence length', { expected: 'an integer ≥ 2', found: String(T) });
  if (!(f >= 0 && f < 1))
    throw new DistillError('E_USAGE', 'invalid validation fraction', { expected: '0 ≤ f < 1', found: String(f) });
  if (!opts.text.length)
    throw new DistillError('E_USAGE', 'no text files given', { expected: 'at least one --text file' });
  const outDir = path.dirname(path.resolve(opts.out));
  if (!existsSync(outDir))
    throw new DistillError('E_IO', `output folder does not exist: ${outDir}`, {
      hint: 'create it first',
      subject: opts.out,
    });
  const tok = await loadTokenizer(opts.tokenizer);
  const field = opts.textField ?? 'text';

  // Read every input before encoding so a bad file fails before any work.
  const perFile = opts.text.map((file) => readDocuments(file, field));
  const totalDocs = perFile.reduce((a, d) => a + d.length, 0);
  const stream: number[] = [];
  let done = 0;
  for (const docs of perFile) {
    for (const doc of docs) {
      for (const id of tok.encode(doc)) stream.push(id);
      stream.push(tok.eotId);
      opts.onProgress?.({ phase: 'tokenize', done: ++done, total: totalDocs, unit: 'docs' });
    }
  }
  const nSeq = Math.floor(stream.length / T);
  if (nSeq === 0) {
    throw new DistillError('E_DATA', 'the corpus is too small for one sequence', {
      expected: `at least ${T} tokens`,
      found: `${stream.length} tokens from ${totalDocs} documents`,
      hint: 'add text or lower --seq-len',
      subject: opts.text.join(', '),
    });
  }
  const every = f > 0 ? Math.max(2, Math.round(1 / f)) : 0;
  const isVal = (s: number): boolean => every > 0 && s % every === every - 1;
  const nVal = every > 0 ? Math.floor(nSeq / every) : 0;
  const train = new Uint32Array((nSeq - nVal) * T);
  const val = new Uint32Array(nVal * T);
  let ti = 0;
  let vi = 0;
  for (let s = 0; s < nSeq; s++) {
    const src = stream.slice(s * T, (s + 1) * T);
    if (isVal(s)) val.set(src, vi++ * T);
    else train.set(src, ti++ * T);
  }
  const header = {
    seqLen: T,
    vocabSize: tok.vocabSize,
    eotId: tok.eotId,
    tokenizer: { name: tok.name, sha256: tok.sha256 },
  };
  const trainW = writeTokenDataset(opts.out, { ...header, split: 'train' }, train);
  const result: PrepareResult = {
    train: { path: opts.out, ...trainW },
    tokenizer: { ...header.tokenizer, vocabSize: tok.vocabSize, eotId: tok.eotId },
    seqLen: T,
    documents: totalDocs,
    tokens: stream.length,
    droppedTokens: stream.length - nSeq * T,
  };
  if (nVal > 0) {
    const vp = valPathFor(opts.out);
    result.val = { path: vp, ...writeTokenDataset(vp, { ...header, split: 'val' }, val) };
  }
  return result;
}
