// Tokenizers: the built-in byte-level tokenizer (ids 0–255 are bytes, 256 is end-of-text, V = 257)
// and Hugging Face `tokenizer.json` files via @lenml/tokenizers; a model folder resolves to its own.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { TokenizerLoader } from '@lenml/tokenizers';
import { DistillError } from '../core/errors.js';
import { BYTE_EOT_ID, BYTE_VOCAB_SIZE, byteTokenizerJson } from './byte-level.js';

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
  /** Ids of the added special tokens (end-of-turn markers and the like); empty for the byte tokenizer. */
  specialIds: ReadonlySet<number>;
  /** The chat template of tokenizer_config.json (or chat_template.jinja beside it), with the tokens it refers to. */
  chat?: ChatTemplateSource;
}

/** A chat template and the special-token strings transformers passes to it. */
export interface ChatTemplateSource {
  template: string;
  /** Where the template came from, for error messages. */
  file: string;
  /** `bos_token`, `eos_token`, `unk_token`, `pad_token`, … as tokenizer_config.json names them. */
  specialTokens: Record<string, string>;
}

/** The descriptor a model folder's tokenizer.json holds when the model uses the byte-level tokenizer. */
export const BYTE_TOKENIZER_DESCRIPTOR = {
  distillery_tokenizer: 'byte',
  version: 1,
  vocab_size: 257,
  eot_id: 256,
} as const;
export { BYTE_EOT_ID, BYTE_VOCAB_SIZE };

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
    specialIds: new Set(),
    encode: (text) => Array.from(enc.encode(text)),
    decode(ids) {
      // End-of-text renders as a newline so decoded documents stay apart; other ids ≥ 256 cannot occur.
      const out: number[] = [];
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i] ?? 0;
        out.push(id === BYTE_EOT_ID ? 10 : id & 0xff);
      }
      return dec.decode(Uint8Array.from(out));
    },
  };
}

/** A special token in tokenizer_config.json: a string or an AddedToken object `{content, …}`. */
function tokenString(t: unknown): string | undefined {
  if (typeof t === 'string') return t;
  const content = (t as { content?: unknown } | null)?.content;
  return typeof content === 'string' ? content : undefined;
}

const EOT_CANDIDATES = ['<|endoftext|>', '<|end_of_text|>', '<|eot_id|>', '</s>', '<eos>', '<|im_end|>', '[SEP]'];

/** The parts of a tokenizer.json read here (the rest goes to @lenml/tokenizers as it is). */
interface TokenizerJson {
  distillery_tokenizer?: string;
  model?: { vocab?: Record<string, number> | Array<[string, number]> };
  added_tokens?: Array<{ id: number; content: string; special?: boolean }>;
}

function isByteTokenizerJson(json: TokenizerJson | null): boolean {
  const merges = (json?.model as { merges?: unknown[] } | undefined)?.merges;
  // Cheap checks first: real tokenizers have merges or more than one added token.
  if (!Array.isArray(merges) || merges.length !== 0 || json?.added_tokens?.length !== 1) return false;
  return canonicalJson(json) === canonicalJson(byteTokenizerJson());
}

function hfTokenizer(file: string, bytes: Buffer): Tokenizer {
  let json: TokenizerJson | null;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new DistillError('E_TOKENIZER', `cannot parse tokenizer file ${file}`, {
      expected: 'a JSON tokenizer.json',
      found: (e as Error).message,
      subject: file,
    });
  }
  // The byte descriptor, or the byte tokenizer as Hugging Face files (a Hugging Face export of a byte-level
  // student): the same ids, so the same tokenizer and hash.
  if (json?.distillery_tokenizer === 'byte' || isByteTokenizerJson(json)) return byteTokenizer();
  if (!json || typeof json !== 'object' || !json.model) {
    throw new DistillError('E_TOKENIZER', `${file} is not a Hugging Face tokenizer.json`, {
      expected: 'an object with a "model" field',
      found: `keys ${Object.keys(json ?? {}).join(', ') || 'none'}`,
      subject: file,
    });
  }
  const cfgFile = path.join(path.dirname(file), 'tokenizer_config.json');
  const tokenizerConfig: Record<string, unknown> = existsSync(cfgFile) ? JSON.parse(readFileSync(cfgFile, 'utf8')) : {};
  let tok: ReturnType<typeof TokenizerLoader.fromPreTrained>;
  try {
    tok = TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig } as Parameters<
      typeof TokenizerLoader.fromPreTrained
    >[0]);
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
  const added = json.added_tokens ?? [];
  for (const t of added) if (t.id > maxId) maxId = t.id;
  const byContent = new Map<string, number>();
  for (const t of added) byContent.set(t.content, t.id);
  if (!Array.isArray(vocab))
    for (const c of EOT_CANDIDATES) {
      const id = vocab[c];
      if (id !== undefined && !byContent.has(c)) byContent.set(c, id);
    }
  const cfgEos = tokenString(tokenizerConfig.eos_token);
  const eotName = [cfgEos, ...EOT_CANDIDATES].find((c) => c !== undefined && byContent.has(c));
  if (eotName === undefined) {
    throw new DistillError('E_TOKENIZER', `${file} has no end-of-text token`, {
      expected: `one of ${EOT_CANDIDATES.join(' ')} among its tokens`,
      found: 'none',
      hint: 'documents are separated by an end-of-text token; add one to the tokenizer',
      subject: file,
    });
  }
  const eotId = byContent.get(eotName);
  if (eotId === undefined) throw new Error(`internal invariant violated: ${eotName} has no id`);
  return {
    name: `hf:${path.basename(path.dirname(path.resolve(file)))}/${path.basename(file)}`,
    sha256: sha256(bytes),
    vocabSize: maxId + 1,
    eotId,
    specialIds: new Set(added.filter((t) => t.special !== false).map((t) => t.id)),
    chat: chatTemplateOf(path.dirname(file), tokenizerConfig),
    encode: (text) => tok.encode(text, { add_special_tokens: false }),
    decode: (ids) => tok.decode(Array.from(ids), { skip_special_tokens: false }),
  };
}

/**
 * The chat template as transformers finds it (tokenization_utils_base.py, CHAT_TEMPLATE_FILE): a
 * `chat_template.jinja` beside the tokenizer wins over tokenizer_config.json's `chat_template`, which is a
 * string or a list of `{name, template}` of which apply_chat_template uses "default". The template also
 * sees the special-token strings (apply_chat_template passes `**self.special_tokens_map`).
 */
function chatTemplateOf(dir: string, config: Record<string, unknown>): ChatTemplateSource | undefined {
  const specialTokens: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) {
    const t = tokenString(v);
    if (k.endsWith('_token') && t !== undefined) specialTokens[k] = t;
  }
  const sidecar = path.join(dir, 'chat_template.jinja');
  if (existsSync(sidecar)) return { template: readFileSync(sidecar, 'utf8'), file: sidecar, specialTokens };
  const file = path.join(dir, 'tokenizer_config.json');
  const t = config.chat_template;
  if (typeof t === 'string') return { template: t, file, specialTokens };
  if (Array.isArray(t)) {
    const named = t.find((e: { name?: unknown }) => e?.name === 'default') as { template?: unknown } | undefined;
    if (typeof named?.template === 'string') return { template: named.template, file, specialTokens };
  }
  return undefined;
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
        hint: 'pass `tokenizer` byte or the tokenizer.json the model was trained with',
        subject: dir,
      });
    }
  }
  return hfTokenizer(file, readFileSync(file));
}
