// Token datasets: one Arrow IPC file per split, a column `tokens` FixedSizeList<uint32>[T] with one
// row per sequence (N × T tokens), in version 2 a column `loss_mask` FixedSizeList<uint8>[T] (1 where
// the position's prediction is scored), and schema metadata recording T, V, the end-of-text id, the
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
  Uint8,
  type Data,
} from 'apache-arrow';
import { DistillError } from '../core/errors.js';
import { ioError } from '../core/io-errors.js';
import { canonicalJson } from './tokenizer.js';

export const TOKEN_DATASET_FORMAT = 'distillery.token-dataset';
/** Version 1: tokens only, every position scored. Version 2: tokens and a per-position loss mask. */
export const TOKEN_DATASET_VERSION = 1;
export const TOKEN_DATASET_MASKED_VERSION = 2;
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
  /** SHA-256 of the canonical header (without split), the tokens as little-endian uint32 and the loss mask. */
  sha256: string;
  numSequences: number;
  /** numSequences × seqLen, row-major. */
  tokens: Uint32Array;
  /**
   * numSequences × seqLen, row-major, 0 or 1: 1 where the prediction made at that position (of the token
   * at the next position) is scored. Absent in version-1 datasets, where every position is scored.
   */
  lossMask?: Uint8Array;
  /** Positions whose mask is 1 (all N × T without a mask). */
  scoredPositions: number;
  sequence(i: number): Uint32Array;
  /** Sequence i's loss mask, or undefined when the dataset has none. */
  sequenceMask(i: number): Uint8Array | undefined;
}

/**
 * The dataset hash: what the tokens are, which positions are scored and what they mean, independent of
 * file layout and split name. A dataset without a mask hashes as version 1 always did.
 */
export function tokenDatasetHash(
  h: Omit<TokenDatasetHeader, 'split'>,
  tokens: Uint32Array,
  lossMask?: Uint8Array,
): string {
  const hash = createHash('sha256');
  hash.update(
    canonicalJson({
      format: TOKEN_DATASET_FORMAT,
      version: lossMask ? TOKEN_DATASET_MASKED_VERSION : TOKEN_DATASET_VERSION,
      seqLen: h.seqLen,
      vocabSize: h.vocabSize,
      eotId: h.eotId,
      tokenizer: h.tokenizer,
    }),
  );
  hash.update(new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength));
  if (lossMask) hash.update(lossMask);
  return hash.digest('hex');
}

const countOnes = (m: Uint8Array): number => {
  let n = 0;
  for (let i = 0; i < m.length; i++) n += m[i] === 1 ? 1 : 0;
  return n;
};

/** Writes the dataset to a temporary sibling and renames it into place, so a crash never leaves a file that looks whole. */
export function writeTokenDataset(
  file: string,
  header: TokenDatasetHeader,
  tokens: Uint32Array,
  lossMask?: Uint8Array,
): { sha256: string; bytes: number; numSequences: number; scoredPositions: number } {
  const T = header.seqLen;
  if (tokens.length % T !== 0)
    throw new Error(`internal invariant violated: ${tokens.length} tokens is not a multiple of T=${T}`);
  if (lossMask && lossMask.length !== tokens.length)
    throw new Error(`internal invariant violated: loss mask of ${lossMask.length} for ${tokens.length} tokens`);
  const n = tokens.length / T;
  const sha256 = tokenDatasetHash(header, tokens, lossMask);
  const scoredPositions = lossMask ? countOnes(lossMask) : tokens.length;
  const listType = new FixedSizeList(T, new Field('item', new Uint32(), false));
  const maskType = new FixedSizeList(T, new Field('item', new Uint8(), false));
  const metadata = new Map<string, string>([
    ['distillery.format', TOKEN_DATASET_FORMAT],
    ['distillery.version', String(lossMask ? TOKEN_DATASET_MASKED_VERSION : TOKEN_DATASET_VERSION)],
    ['distillery.seq_len', String(T)],
    ['distillery.vocab_size', String(header.vocabSize)],
    ['distillery.eot_id', String(header.eotId)],
    ['distillery.tokenizer', JSON.stringify(header.tokenizer)],
    ['distillery.split', header.split],
    ['distillery.num_sequences', String(n)],
    ['distillery.sha256', sha256],
  ]);
  if (lossMask) metadata.set('distillery.scored_positions', String(scoredPositions));
  const fields: Field[] = [new Field('tokens', listType, false)];
  if (lossMask) fields.push(new Field('loss_mask', maskType, false));
  const schema = new Schema(fields, metadata);
  const batches: RecordBatch[] = [];
  for (let s = 0; s < n || (n === 0 && batches.length === 0); s += BATCH_ROWS) {
    const rows = Math.min(BATCH_ROWS, n - s);
    const child = makeData({
      type: new Uint32(),
      length: rows * T,
      nullCount: 0,
      data: tokens.subarray(s * T, (s + rows) * T),
    });
    const children: Data[] = [makeData({ type: listType, length: rows, nullCount: 0, child })];
    if (lossMask) {
      const data = lossMask.subarray(s * T, (s + rows) * T);
      const maskChild = makeData({ type: new Uint8(), length: rows * T, nullCount: 0, data });
      children.push(makeData({ type: maskType, length: rows, nullCount: 0, child: maskChild }));
    }
    batches.push(
      new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: rows, nullCount: 0, children })),
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
    throw ioError(e, 'write the token dataset', file);
  }
  return { sha256, bytes: bytes.byteLength, numSequences: n, scoredPositions };
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
/** Arrow IPC file framing: "ARROW1" + 2 padding bytes first; the footer, its int32 length and "ARROW1" last. */
const ARROW_MAGIC = Buffer.from('ARROW1');
const DAMAGED_HINT =
  'prepare it again with `distill data prepare` (a full disk or an interrupted copy cuts files short)';

/** Names a file that is not an Arrow file, or one cut short (its end lacks the footer), before any parsing. */
function checkArrowFile(bytes: Uint8Array, file: string): void {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const head = buf.subarray(0, ARROW_MAGIC.length).equals(ARROW_MAGIC);
  if (!head)
    throw new DistillError('E_DATA', `${file} is not a token dataset`, {
      expected: 'an Arrow IPC file from `distill data prepare` (it starts with ARROW1)',
      found: buf.length ? `${buf.length} bytes of something else` : 'an empty file',
      subject: file,
    });
  const footerLen = buf.length >= 16 ? buf.readInt32LE(buf.length - 10) : -1;
  const tail = buf.length >= 16 && buf.subarray(buf.length - ARROW_MAGIC.length).equals(ARROW_MAGIC);
  if (!tail || footerLen <= 0 || footerLen > buf.length - 16)
    throw new DistillError('E_DATA', `token dataset ${file} is truncated: it ends without the Arrow file footer`, {
      found: `${buf.length} bytes`,
      hint: DAMAGED_HINT,
      subject: file,
    });
}

export async function openTokenDataset(file: string): Promise<TokenDataset> {
  if (!existsSync(file))
    throw new DistillError('E_NOT_FOUND', `token dataset not found: ${file}`, {
      hint: 'create it with `distill data prepare`',
      subject: file,
    });
  const bytes = readFileSync(file);
  checkArrowFile(bytes, file);
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (e) {
    throw new DistillError('E_DATA', `token dataset ${file} is damaged: its Arrow data cannot be read`, {
      found: (e as Error).message,
      hint: DAMAGED_HINT,
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
  if (version !== TOKEN_DATASET_VERSION && version !== TOKEN_DATASET_MASKED_VERSION)
    throw new DistillError('E_DATA', `unsupported token dataset version in ${file}`, {
      expected: `${TOKEN_DATASET_VERSION} or ${TOKEN_DATASET_MASKED_VERSION}`,
      found: String(version),
      hint: 'prepare it again with this version of distill',
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
  const n = table.numRows;
  const tokens = readListColumn(table, 'tokens', new Uint32Array(n * T), T, file);
  const lossMask =
    version === TOKEN_DATASET_MASKED_VERSION
      ? readListColumn(table, 'loss_mask', new Uint8Array(n * T), T, file)
      : undefined;
  const sha256 = tokenDatasetHash(header, tokens, lossMask);
  if (sha256 !== recorded) {
    throw new DistillError('E_DATA', `token dataset ${file} does not match its recorded hash`, {
      expected: recorded,
      found: sha256,
      hint: 'the file was modified or damaged; prepare it again',
      subject: file,
    });
  }
  const at = (i: number) => `sequence ${Math.floor(i / T)}, position ${i % T}`;
  for (let i = 0; i < tokens.length; i++) {
    const id = tokens[i] ?? 0;
    if (id >= header.vocabSize) {
      throw new DistillError('E_DATA', `token id out of range in ${file}`, {
        expected: `ids < ${header.vocabSize}`,
        found: `${id} at ${at(i)}`,
        subject: file,
      });
    }
  }
  if (lossMask) {
    const bad = lossMask.findIndex((m) => m > 1);
    if (bad >= 0)
      throw new DistillError('E_DATA', `loss mask value out of range in ${file}`, {
        expected: '0 or 1',
        found: `${lossMask[bad]} at ${at(bad)}`,
        subject: file,
      });
  }
  const checkIndex = (i: number) => {
    if (!Number.isInteger(i) || i < 0 || i >= n)
      throw new DistillError('E_USAGE', `sequence index out of range`, {
        expected: `0 ≤ i < ${n}`,
        found: String(i),
        subject: file,
      });
  };
  return {
    ...header,
    path: file,
    sha256,
    numSequences: n,
    tokens,
    ...(lossMask ? { lossMask } : {}),
    scoredPositions: lossMask ? countOnes(lossMask) : tokens.length,
    sequence(i: number) {
      checkIndex(i);
      return tokens.subarray(i * T, (i + 1) * T);
    },
    sequenceMask(i: number) {
      checkIndex(i);
      return lossMask?.subarray(i * T, (i + 1) * T);
    },
  };
}

/** Copies a FixedSizeList<uint32 | uint8>[T] column into `out` (N × T). */
function readListColumn<A extends Uint32Array | Uint8Array>(
  table: Table,
  name: string,
  out: A,
  T: number,
  file: string,
): A {
  const col = table.getChild(name);
  const item = name === 'tokens' ? 'uint32' : 'uint8';
  if (!col)
    throw new DistillError('E_DATA', `${file} has no ${name} column`, {
      expected: `column ${name}: FixedSizeList<${item}>[T]`,
      found: table.schema.fields.map((f) => f.name).join(', '),
      subject: file,
    });
  let at = 0;
  for (const d of col.data) {
    const child = d.children[0];
    if (!child || !(child.values instanceof out.constructor))
      throw new DistillError('E_DATA', `${file}: column ${name} has the wrong type`, {
        expected: `FixedSizeList<${item}>[${T}]`,
        found: String(d.type),
        subject: file,
      });
    const vals = (child.values as A).subarray(child.offset + d.offset * T, child.offset + (d.offset + d.length) * T);
    out.set(vals, at);
    at += vals.length;
  }
  return out;
}
