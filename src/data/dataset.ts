// Token datasets: one Arrow IPC file per split, a column `tokens` FixedSizeList<uint32>[T] with one
// row per sequence (N × T tokens), and schema metadata recording T, V, the end-of-text id, the
// tokenizer (name, sha256) and the content hash that the logit-cache fingerprint uses.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import {
  Field,
  FixedSizeList,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableFromIPC,
  tableToIPC,
  Uint32,
} from 'apache-arrow';
import { DistillError } from '../core/errors.js';
import { canonicalJson } from './tokenizer.js';

export const TOKEN_DATASET_FORMAT = 'distillery.token-dataset';
export const TOKEN_DATASET_VERSION = 1;
/** Sequences per Arrow record batch (keeps batches around 1–8 MB at common T). */
const BATCH_ROWS = 2048;

export interface TokenDatasetHeader {
  seqLen: number;
  vocabSize: number;
  eotId: number;
  tokenizer: { name: string; sha256: string };
  split: string;
}

export interface TokenDataset extends TokenDatasetHeader {
  path: string;
  /** SHA-256 of the canonical header (without split) and the tokens as little-endian uint32. */
  sha256: string;
  numSequences: number;
  /** numSequences × seqLen, row-major. */
  tokens: Uint32Array;
  sequence(i: number): Uint32Array;
}

/** The dataset hash: what the tokens are and what they mean, independent of file layout and split name. */
export function tokenDatasetHash(h: Omit<TokenDatasetHeader, 'split'>, tokens: Uint32Array): string {
  const hash = createHash('sha256');
  hash.update(
    canonicalJson({
      format: TOKEN_DATASET_FORMAT,
      version: TOKEN_DATASET_VERSION,
      seqLen: h.seqLen,
      vocabSize: h.vocabSize,
      eotId: h.eotId,
      tokenizer: h.tokenizer,
    }),
  );
  hash.update(new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength));
  return hash.digest('hex');
}

/** Writes the dataset to a temporary sibling and renames it into place, so a crash never leaves a file that looks whole. */
export function writeTokenDataset(
  file: string,
  header: TokenDatasetHeader,
  tokens: Uint32Array,
): { sha256: string; bytes: number; numSequences: number } {
  const T = header.seqLen;
  if (tokens.length % T !== 0)
    throw new Error(`internal invariant violated: ${tokens.length} tokens is not a multiple of T=${T}`);
  const n = tokens.length / T;
  const sha256 = tokenDatasetHash(header, tokens);
  const listType = new FixedSizeList(T, new Field('item', new Uint32(), false));
  const metadata = new Map<string, string>([
    ['distillery.format', TOKEN_DATASET_FORMAT],
    ['distillery.version', String(TOKEN_DATASET_VERSION)],
    ['distillery.seq_len', String(T)],
    ['distillery.vocab_size', String(header.vocabSize)],
    ['distillery.eot_id', String(header.eotId)],
    ['distillery.tokenizer', JSON.stringify(header.tokenizer)],
    ['distillery.split', header.split],
    ['distillery.num_sequences', String(n)],
    ['distillery.sha256', sha256],
  ]);
  const schema = new Schema([new Field('tokens', listType, false)], metadata);
  const batches: RecordBatch[] = [];
  for (let s = 0; s < n || (n === 0 && batches.length === 0); s += BATCH_ROWS) {
    const rows = Math.min(BATCH_ROWS, n - s);
    const child = makeData({
      type: new Uint32(),
      length: rows * T,
      nullCount: 0,
      data: tokens.subarray(s * T, (s + rows) * T),
    });
    const list = makeData({ type: listType, length: rows, nullCount: 0, child });
    batches.push(
      new RecordBatch(
        schema,
        makeData({ type: new Struct(schema.fields), length: rows, nullCount: 0, children: [list] }),
      ),
    );
    if (n === 0) break;
  }
  const bytes = tableToIPC(new Table(schema, batches), 'file');
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new DistillError('E_IO', `cannot write token dataset ${file}`, {
      found: (e as Error).message,
      hint: 'check that the folder exists and is writable',
      subject: file,
      cause: e,
    });
  }
  return { sha256, bytes: bytes.byteLength, numSequences: n };
}

function meta(schema: Schema, key: string, file: string): string {
  const v = schema.metadata.get(`distillery.${key}`);
  if (v === undefined)
    throw new DistillError('E_DATA', `${file} is not a Distillery token dataset`, {
      expected: `schema metadata distillery.${key}`,
      found: 'missing',
      hint: 'create it with `distill data prepare`',
      subject: file,
    });
  return v;
}

/** Opens a token dataset, checking its format, its content hash and that every id is < V. */
export async function openTokenDataset(file: string): Promise<TokenDataset> {
  if (!existsSync(file))
    throw new DistillError('E_NOT_FOUND', `token dataset not found: ${file}`, {
      hint: 'create it with `distill data prepare`',
      subject: file,
    });
  let table: Table;
  try {
    table = tableFromIPC(readFileSync(file));
  } catch (e) {
    throw new DistillError('E_DATA', `cannot read token dataset ${file}`, {
      expected: 'an Arrow IPC file',
      found: (e as Error).message,
      subject: file,
      cause: e,
    });
  }
  const schema = table.schema;
  const format = meta(schema, 'format', file);
  if (format !== TOKEN_DATASET_FORMAT)
    throw new DistillError('E_DATA', `${file} is not a token dataset`, {
      expected: TOKEN_DATASET_FORMAT,
      found: format,
      subject: file,
    });
  const version = Number(meta(schema, 'version', file));
  if (version !== TOKEN_DATASET_VERSION)
    throw new DistillError('E_DATA', `unsupported token dataset version in ${file}`, {
      expected: String(TOKEN_DATASET_VERSION),
      found: String(version),
      subject: file,
    });
  const header: TokenDatasetHeader = {
    seqLen: Number(meta(schema, 'seq_len', file)),
    vocabSize: Number(meta(schema, 'vocab_size', file)),
    eotId: Number(meta(schema, 'eot_id', file)),
    tokenizer: JSON.parse(meta(schema, 'tokenizer', file)),
    split: schema.metadata.get('distillery.split') ?? 'train',
  };
  const recorded = meta(schema, 'sha256', file);
  const T = header.seqLen;
  const col = table.getChild('tokens');
  if (!col)
    throw new DistillError('E_DATA', `${file} has no tokens column`, {
      expected: 'column tokens: FixedSizeList<uint32>[T]',
      found: schema.fields.map((f) => f.name).join(', '),
      subject: file,
    });
  const n = table.numRows;
  const tokens = new Uint32Array(n * T);
  let at = 0;
  for (const d of col.data) {
    const child = d.children[0]!;
    const vals = (child.values as Uint32Array).subarray(
      child.offset + d.offset * T,
      child.offset + (d.offset + d.length) * T,
    );
    tokens.set(vals, at);
    at += vals.length;
  }
  const sha256 = tokenDatasetHash(header, tokens);
  if (sha256 !== recorded) {
    throw new DistillError('E_DATA', `token dataset ${file} does not match its recorded hash`, {
      expected: recorded,
      found: sha256,
      hint: 'the file was modified or damaged; prepare it again',
      subject: file,
    });
  }
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i]! >= header.vocabSize) {
      throw new DistillError('E_DATA', `token id out of range in ${file}`, {
        expected: `ids < ${header.vocabSize}`,
        found: `${tokens[i]} at sequence ${Math.floor(i / T)}, position ${i % T}`,
        subject: file,
      });
    }
  }
  return {
    ...header,
    path: file,
    sha256,
    numSequences: n,
    tokens,
    sequence(i: number) {
      if (!Number.isInteger(i) || i < 0 || i >= n)
        throw new DistillError('E_USAGE', `sequence index out of range`, {
          expected: `0 ≤ i < ${n}`,
          found: String(i),
          subject: file,
        });
      return tokens.subarray(i * T, (i + 1) * T);
    },
  };
}
