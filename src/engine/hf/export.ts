// Hugging Face export of a student checkpoint: a folder that transformers loads as LlamaForCausalLM (dense) or
// Llama4ForCausalLM (mixture-of-experts, llama4.ts) — config.json, model.safetensors (Hugging Face tensor names, F32/BF16/F16), tokenizer.json,
// tokenizer_config.json and generation_config.json.
import { copyFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DistillError } from '../../core/errors.js';
import { byteTokenizerConfig, byteTokenizerJson } from '../../data/byte-level.js';
import { loadTokenizer } from '../../data/tokenizer.js';
import { paramLayout } from '../../core/model.js';
import { loadCheckpoint } from '../checkpoint.js';
import { makeDir } from '../../store/index.js';
import { encodeSafetensors, type TensorInput } from '../safetensors.js';
import { hfTensorName, toHfConfig, type HfDType } from './llama.js';
import { llama4Refusal, llama4Tensors, toLlama4Config } from './llama4.js';

export interface HfExportOptions {
  /** A student checkpoint folder (config.json + model.safetensors). */
  checkpoint: string;
  /** The folder to write (created if missing). */
  out: string;
  /** Storage dtype of the weights (default f32). */
  dtype?: HfDType;
  /**
   * The tokenizer the student was trained with: "byte", a tokenizer.json or a model folder. Default: "byte"
   * when the vocabulary has 257 ids (the byte tokenizer's), otherwise required.
   */
  tokenizer?: string;
  /** Replace the model files of an earlier export in `out` (default: refuse). */
  force?: boolean;
}

export interface HfExportResult {
  out: string;
  files: string[];
  dtype: HfDType;
  parameters: number;
  bytes: number;
  tokenizer: string;
}

/** Files a Hugging Face tokenizer folder may hold besides tokenizer.json; copied when present. */
const TOKENIZER_SIDE_FILES = ['tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja'];

function writeAtomic(file: string, data: Uint8Array | string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

/** The id of a special token named in tokenizer_config.json (a string or an AddedToken object). */
function specialTokenId(tokenizerJson: Record<string, unknown>, token: unknown): number | null {
  const content = typeof token === 'string' ? token : (token as { content?: unknown } | null)?.content;
  if (typeof content !== 'string') return null;
  const added = (tokenizerJson.added_tokens ?? []) as Array<{ id: number; content: string }>;
  const hit = added.find((t) => t.content === content);
  if (hit) return hit.id;
  const vocab = (tokenizerJson.model as { vocab?: unknown } | undefined)?.vocab;
  const id = vocab && !Array.isArray(vocab) ? (vocab as Record<string, number>)[content] : undefined;
  return id ?? null;
}

export async function exportHuggingFace(opts: HfExportOptions): Promise<HfExportResult> {
  const dtype = opts.dtype ?? 'f32';
  const ck = loadCheckpoint(opts.checkpoint);
  const c = ck.config;
  const refusal = llama4Refusal(c);
  if (refusal)
    throw new DistillError('E_UNSUPPORTED', 'this mixture-of-experts student has no Hugging Face architecture', {
      expected: 'a dense student (LlamaForCausalLM), or an MoE student that Llama4ForCausalLM computes',
      found: `${refusal.found} in ${opts.checkpoint}/config.json`,
      hint: `${refusal.hint} (see docs/hf.md)`,
      subject: opts.checkpoint,
    });
  const spec = opts.tokenizer ?? (c.vocabSize === 257 ? 'byte' : undefined);
  if (spec === undefined)
    throw new DistillError('E_USAGE', 'the student’s tokenizer is needed for a Hugging Face export', {
      expected: '`tokenizer`: a tokenizer.json or model folder (the one the training data was prepared with)',
      field: 'tokenizer',
      found: `a vocabulary of ${c.vocabSize} ids, not the byte tokenizer's 257`,
      subject: opts.checkpoint,
    });
  const tok = await loadTokenizer(spec);
  if (tok.vocabSize > c.vocabSize)
    throw new DistillError('E_MODEL', `the tokenizer ${tok.name} does not fit the student`, {
      expected: `at most ${c.vocabSize} ids (the student's vocabulary)`,
      found: `${tok.vocabSize} ids`,
      subject: spec,
    });

  const earlier = ['config.json', 'model.safetensors'].filter((f) => existsSync(path.join(opts.out, f)));
  if (earlier.length && !opts.force)
    throw new DistillError('E_USAGE', `${opts.out} already holds a model (${earlier.join(', ')})`, {
      subject: opts.out,
      field: 'out',
      hint: 'pass `force` to replace it, or choose another `out`',
    });
  makeDir(opts.out);
  const files: string[] = [];
  const put = (name: string, data: Uint8Array | string) => {
    writeAtomic(path.join(opts.out, name), data);
    files.push(name);
  };

  // Tokenizer files: the byte tokenizer written as a Hugging Face tokenizer, or the student's own copied.
  let tokenizerJson: Record<string, unknown>;
  let tokenizerConfig: Record<string, unknown>;
  if (tok.name === 'byte') {
    tokenizerJson = byteTokenizerJson();
    tokenizerConfig = byteTokenizerConfig(c.contextLength);
    put('tokenizer.json', json(tokenizerJson));
    put('tokenizer_config.json', json(tokenizerConfig));
  } else {
    const dir = existsSync(spec) && !spec.endsWith('.json') ? spec : path.dirname(spec);
    const src = spec.endsWith('.json') ? spec : path.join(dir, 'tokenizer.json');
    tokenizerJson = JSON.parse(readFileSync(src, 'utf8')) as Record<string, unknown>;
    copyFileSync(src, path.join(opts.out, 'tokenizer.json'));
    files.push('tokenizer.json');
    tokenizerConfig = {};
    for (const f of TOKENIZER_SIDE_FILES) {
      const p = path.join(dir, f);
      if (!existsSync(p)) continue;
      copyFileSync(p, path.join(opts.out, f));
      files.push(f);
      if (f === 'tokenizer_config.json')
        tokenizerConfig = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
    }
  }
  const tokens = { bosTokenId: specialTokenId(tokenizerJson, tokenizerConfig.bos_token), eosTokenId: tok.eotId };

  // Weights: canonical tensors under their Hugging Face names (no lm_head when tied: transformers ties it).
  const tensors: Array<[string, TensorInput]> = c.moe
    ? llama4Tensors(c, ck.params, DTYPE[dtype])
    : paramLayout(c).map((s) => [
        hfTensorName(s.name),
        { shape: s.shape, data: ck.params.subarray(s.offset, s.offset + s.size), dtype: DTYPE[dtype] },
      ]);
  // transformers' load_state_dict refuses a safetensors file whose metadata lacks format "pt".
  const weights = encodeSafetensors(tensors, { format: 'pt' });
  put('model.safetensors', weights);
  put('config.json', json(c.moe ? toLlama4Config(c, c.moe, tokens, dtype) : toHfConfig(c, tokens, dtype)));
  put(
    'generation_config.json',
    json({
      ...(tokens.bosTokenId !== null ? { bos_token_id: tokens.bosTokenId } : {}),
      eos_token_id: tokens.eosTokenId,
    }),
  );
  return {
    out: opts.out,
    files,
    dtype,
    parameters: ck.params.length,
    bytes: weights.byteLength,
    tokenizer: tok.name,
  };
}

const DTYPE: Record<HfDType, 'F32' | 'BF16' | 'F16'> = { f32: 'F32', bf16: 'BF16', f16: 'F16' };
