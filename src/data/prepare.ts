// `data prepare`: text, JSONL, Parquet or chat conversations → token stream doc₁ EOT doc₂ EOT … (with
// per-token target flags for chat) cut into fixed-length sequences of T tokens → Arrow datasets.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DistillError } from '../core/errors.js';
import type { ProgressFn } from '../core/types.js';
import { makeDir } from '../store/index.js';
import { chatEncoder } from './chat.js';
import { writeTokenDataset } from './dataset.js';
import { packSequences, TokenStream } from './pack.js';
import { defaultColumn, INPUT_FORMATS, readDocuments, type InputFormat } from './sources.js';
import { loadTokenizer, type ChatTemplateSource } from './tokenizer.js';

export interface PrepareOptions {
  /** Input files: .jsonl/.ndjson one document per line, .parquet one per row, anything else one document. */
  text: string[];
  /** "text" (default): documents are texts. "chat": documents are lists of messages, rendered by the chat template. */
  format?: InputFormat;
  /** "byte", a tokenizer.json, or a model folder. */
  tokenizer: string;
  seqLen: number;
  /** The training split's path; the validation split goes beside it as <name>.val.arrow. */
  out: string;
  /** Fraction of sequences held out for validation (every ⌈1/f⌉-th sequence), default 0. */
  valFraction?: number;
  /** JSONL field / Parquet column holding each document: default "text", or "messages" for chat. */
  column?: string;
  /** @deprecated the former name of `column`. */
  textField?: string;
  /** A Jinja chat template file used instead of the tokenizer's own. */
  chatTemplate?: string;
  /** Replace existing output files (default: refuse). */
  force?: boolean;
  onProgress?: ProgressFn;
}

export interface PreparedSplit {
  path: string;
  sha256: string;
  numSequences: number;
  bytes: number;
  /** Positions whose prediction is scored (all N × T without a loss mask). */
  scoredPositions: number;
}

export interface PrepareResult {
  train: PreparedSplit;
  val?: PreparedSplit;
  tokenizer: { name: string; sha256: string; vocabSize: number; eotId: number };
  format: InputFormat;
  seqLen: number;
  documents: number;
  /** Tokens including one end-of-text per document. */
  tokens: number;
  /** Tokens after the last whole sequence, which are dropped. */
  droppedTokens: number;
  /** Whether the datasets carry a loss mask (chat format). */
  lossMask: boolean;
}

/** The validation split's path for a training split path. */
export function valPathFor(out: string): string {
  return out.endsWith('.arrow') ? `${out.slice(0, -'.arrow'.length)}.val.arrow` : `${out}.val.arrow`;
}

export async function prepareDataset(opts: PrepareOptions): Promise<PrepareResult> {
  const T = opts.seqLen;
  const f = opts.valFraction ?? 0;
  const format = opts.format ?? 'text';
  if (!Number.isInteger(T) || T < 2)
    throw new DistillError('E_USAGE', 'invalid sequence length `seqLen`', {
      expected: 'an integer ≥ 2',
      found: String(T),
      field: 'seqLen',
    });
  if (!(f >= 0 && f < 1))
    throw new DistillError('E_USAGE', 'invalid validation fraction `valFraction`', {
      expected: '0 ≤ f < 1',
      found: String(f),
      field: 'valFraction',
    });
  if (!INPUT_FORMATS.includes(format))
    throw new DistillError('E_USAGE', 'unknown input format', { expected: INPUT_FORMATS.join(' or '), found: format });
  if (!opts.text.length)
    throw new DistillError('E_USAGE', 'no text files given', {
      expected: 'at least one file in `text`',
      field: 'text',
    });
  const outDir = path.dirname(path.resolve(opts.out));
  makeDir(outDir);
  const tok = await loadTokenizer(opts.tokenizer);
  const column = opts.column ?? opts.textField ?? defaultColumn(format);
  const encodeChat = format === 'chat' ? chatEncoder(tok, chatTemplateFor(tok.chat, opts)) : undefined;

  // Read every input before encoding so a bad file fails before any work.
  const docs = opts.text.flatMap((file) => readDocuments(file, format, column));
  // Inputs first (a bad file is the first thing to fix), then the outputs, before any tokenizing.
  const outputs = [opts.out, ...(f > 0 ? [valPathFor(opts.out)] : [])].filter((p) => existsSync(p));
  if (outputs.length && !opts.force)
    throw new DistillError('E_USAGE', `${outputs.join(' and ')} already exist${outputs.length > 1 ? '' : 's'}`, {
      subject: outputs[0],
      field: 'out',
      hint: 'pass `force` to replace, or choose another `out`',
    });
  const stream = new TokenStream(format === 'chat');
  let done = 0;
  for (const doc of docs) {
    if ('text' in doc) stream.push(tok.encode(doc.text));
    else if (encodeChat) {
      const c = encodeChat(doc.messages, doc.where);
      stream.push(c.ids, c.targets);
    }
    stream.push([tok.eotId]);
    opts.onProgress?.({ phase: 'tokenize', done: ++done, total: docs.length, unit: 'docs' });
  }
  const packed = packSequences(stream, T, f);
  if (packed.numSequences === 0) {
    throw new DistillError('E_DATA', 'the corpus is too small for one sequence', {
      expected: `at least ${T} tokens`,
      found: `${stream.length} tokens from ${docs.length} documents`,
      hint: 'add text or lower `seqLen`',
      subject: opts.text.join(', '),
    });
  }
  const header = {
    seqLen: T,
    vocabSize: tok.vocabSize,
    eotId: tok.eotId,
    tokenizer: { name: tok.name, sha256: tok.sha256 },
  };
  const trainW = writeTokenDataset(opts.out, { ...header, split: 'train' }, packed.train.tokens, packed.train.mask);
  const result: PrepareResult = {
    train: { path: opts.out, ...trainW },
    tokenizer: { ...header.tokenizer, vocabSize: tok.vocabSize, eotId: tok.eotId },
    format,
    seqLen: T,
    documents: docs.length,
    tokens: stream.length,
    droppedTokens: stream.length - packed.numSequences * T,
    lossMask: packed.train.mask !== undefined,
  };
  if (packed.val) {
    const vp = valPathFor(opts.out);
    result.val = {
      path: vp,
      ...writeTokenDataset(vp, { ...header, split: 'val' }, packed.val.tokens, packed.val.mask),
    };
  }
  return result;
}

/** The chat template: the `chatTemplate` file, else the tokenizer's own. */
function chatTemplateFor(own: ChatTemplateSource | undefined, opts: PrepareOptions): ChatTemplateSource {
  if (opts.chatTemplate !== undefined) {
    if (!existsSync(opts.chatTemplate))
      throw new DistillError('E_NOT_FOUND', `chat template not found: ${opts.chatTemplate}`, {
        subject: opts.chatTemplate,
      });
    return {
      template: readFileSync(opts.chatTemplate, 'utf8'),
      file: opts.chatTemplate,
      specialTokens: own?.specialTokens ?? {},
    };
  }
  if (!own)
    throw new DistillError('E_TOKENIZER', `tokenizer ${opts.tokenizer} has no chat template`, {
      expected: 'a chat_template in tokenizer_config.json or a chat_template.jinja beside tokenizer.json',
      found: 'none',
      hint: 'pass a Jinja template file as `chatTemplate`',
      subject: opts.tokenizer,
    });
  return own;
}
