// Tokenizers: the built-in byte-level tokenizer (ids 0–255 are bytes, 256 is end-of-text, V = 257)
// and Hugging Face `tokenizer.json` files via @lenml/tokenizers; a model folder resolves to its own.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { TokenizerLoader } from '@lenml/tokenizers';
import { DistillError } from '../core/errors.js';

export interface Tokenizer {
  /** "byte" for the built-in tokenizer, "hf:<file>" for a tokenizer.json. */
  name: string;
  /** Content hash: of the descriptor for the built-in tokenizer, of the file bytes otherwise. */
  sha256: string;
  vocabSize: number;
  /** The end-of-text id placed between documents. */
  eotId: number;
  encode(text: string): number[];
  decode(ids: ArrayLike<number>): string;
}

/** The descriptor a model folder's tokenizer.json holds when the model uses the byte-level tokenizer. */
export const BYTE_TOKENIZER_DESCRIPTOR = {
  distillery_tokenizer: 'byte',
  version: 1,
  vocab_size: 257,
  eot_id: 256,
} as const;
export const BYTE_EOT_ID = 256;
export const BYTE_VOCAB_SIZE = 257;

const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** Canonical JSON (sorted keys) so a hash does not depend on key order or whitespace. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function byteTokenizer(): Tokenizer {
  const enc = new TextEncoder();
  const dec = new TextDecoder('utf-8', { fatal: false });
  return {
    name: 'byte',
    sha256: sha256(canonicalJson(BYTE_TOKENIZER_DESCRIPTOR)),
    vocabSize: BYTE_VOCAB_SIZE,
    eotId: BYTE_EOT_ID,
    encode: (text) => Array.from(enc.encode(text)),
    decode(ids) {
      // End-of-text renders as a newline so decoded documents stay apart; other ids ≥ 256 cannot occur.
      const out: number[] = [];
      for (let i = 0; i < ids.length; i++) out.push(ids[i]! === BYTE_EOT_ID ? 10 : ids[i]! & 0xff);
      return dec.decode(Uint8Array.from(out));
    },
  };
}

const EOT_CANDIDATES = ['<|endoftext|>', '<|end_of_text|>', '<|eot_id|>', '</s>', '<eos>', '<|im_end|>', '[SEP]'];

function hfTokenizer(file: string, bytes: Buffer): Tokenizer {
  let json: any;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new DistillError('E_TOKENIZER', `cannot parse tokenizer file ${file}`, {
      expected: 'a JSON tokenizer.json',
      found: (e as Error).message,
      subject: file,
    });
  }
  if (json?.distillery_tokenizer === 'byte') return byteTokenizer();
  if (!json || typeof json !== 'object' || !json.model) {
    throw new DistillError('E_TOKENIZER', `${file} is not a Hugging Face tokenizer.json`, {
      expected: 'an object with a "model" field',
      found: `keys ${Object.keys(json ?? {}).join(', ') || 'none'}`,
      subject: file,
    });
  }
  const cfgFile = path.join(path.dirname(file), 'tokenizer_config.json');
  const tokenizerConfig = existsSync(cfgFile) ? JSON.parse(readFileSync(cfgFile, 'utf8')) : {};
  let tok: any;
  try {
    tok = TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig });
  } catch (e) {
    throw new DistillError('E_TOKENIZER', `cannot load tokenizer ${file}`, {
      found: (e as Error).message,
      subject: file,
      cause: e,
    });
  }
  // Vocabulary size = the largest id the tokenizer can emit + 1 (model vocab plus added tokens).
  const vocab: Record<string, number> | Array<[string, number]> = json.model.vocab ?? {};
  let maxId = -1;
  const ids = Array.isArray(vocab) ? vocab.map((_, i) => i) : Object.values(vocab);
  for (const id of ids) if (id > maxId) maxId = id;
  const added: Array<{ id: number; content: string }> = json.added_tokens ?? [];
  for (const t of added) if (t.id > maxId) maxId = t.id;
  const byContent = new Map<string, number>();
  for (const t of added) byContent.set(t.content, t.id);
  if (!Array.isArray(vocab))
    for (const c of EOT_CANDIDATES) if (vocab[c] !== undefined && !byContent.has(c)) byContent.set(c, vocab[c]!);
  const cfgEos =
    typeof tokenizerConfig.eos_token === 'string' ? tokenizerConfig.eos_token : tokenizerConfig.eos_token?.content;
  const eotName = [cfgEos, ...EOT_CANDIDATES].find((c) => c !== undefined && byContent.has(c));
  if (eotName === undefined) {
    throw new DistillError('E_TOKENIZER', `${file} has no end-of-text token`, {
      expected: `one of ${EOT_CANDIDATES.join(' ')} among its tokens`,
      found: 'none',
      hint: 'documents are separated by an end-of-text token; add one to the tokenizer',
      subject: file,
    });
  }
  return {
    name: `hf:${path.basename(path.dirname(path.resolve(file)))}/${path.basename(file)}`,
    sha256: sha256(bytes),
    vocabSize: maxId + 1,
    eotId: byContent.get(eotName)!,
    encode: (text) => tok.encode(text, { add_special_tokens: false }) as number[],
    decode: (ids) => tok.decode(Array.from(ids), { skip_special_tokens: false }) as string,
  };
}

/**
 * Resolves a tokenizer spec: "byte" (built-in), a tokenizer.json file, or a model folder (or a file in
 * it, such as model.onnx) holding the tokenizer.json the model was trained with.
 */
export async function loadTokenizer(spec: string): Promise<Tokenizer> {
  if (spec === 'byte') return byteTokenizer();
  if (!existsSync(spec)) {
    throw new DistillError('E_TOKENIZER', `tokenizer not found: ${spec}`, {
      expected: '"byte", a tokenizer.json file, or a model folder containing tokenizer.json',
      found: 'no such file or folder',
      subject: spec,
    });
  }
  let file = spec;
  if (statSync(spec).isDirectory() || !spec.endsWith('.json')) {
    const dir = statSync(spec).isDirectory() ? spec : path.dirname(spec);
    file = path.join(dir, 'tokenizer.json');
    if (!existsSync(file)) {
      throw new DistillError('E_TOKENIZER', `model folder ${dir} has no tokenizer.json`, {
        expected: `${file}`,
        found: 'missing',
        hint: 'pass --tokenizer byte or the tokenizer.json the model was trained with',
        subject: dir,
      });
    }
  }
  return hfTokenizer(file, readFileSync(file));
}
