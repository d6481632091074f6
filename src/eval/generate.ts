// `distill generate`: completions from a student checkpoint for text prompts (tokenized with the checkpoint's
// tokenizer) or for the first tokens of a token dataset's sequences, through the engine's generate() with the KV
// cache. The tokenizer must match the model's vocabulary and, with a dataset, the dataset's own tokenizer.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { at } from '../core/arrays.js';
import { DistillError } from '../core/errors.js';
import type { ProgressFn } from '../core/types.js';
import { loadTokenizer, openTokenDataset, type TokenDataset, type Tokenizer } from '../data/index.js';
import { createEngine, generate, loadCheckpoint, Sampler, type SamplingOptions } from '../engine/index.js';

export interface GenerateCheckpointOptions {
  checkpoint: string;
  /** Text prompts, each completed on its own. */
  prompts?: string[];
  /** A token dataset: its first `rows` sequences, cut to `promptTokens`, are the prompts. */
  data?: string;
  rows?: number;
  /** Prompt length taken from each dataset sequence (default: half the sequence length). */
  promptTokens?: number;
  /** "byte", a tokenizer.json or a model folder; default: the checkpoint's tokenizer.json, else the dataset's. */
  tokenizer?: string;
  maxNewTokens?: number;
  sampling?: Partial<SamplingOptions>;
  seed?: number;
  /** Stop a sequence at the tokenizer's end-of-text id (default true). */
  stopAtEot?: boolean;
  backend?: 'native' | 'reference';
  progress?: ProgressFn;
}

export interface GeneratedSample {
  prompt: string;
  completion: string;
  promptIds: number[];
  /** The generated ids, the end-of-text id included when the sequence stopped on it. */
  ids: number[];
  stopped: boolean;
}

export interface GenerateCheckpointResult {
  checkpoint: string;
  tokenizer: string;
  sampling: SamplingOptions;
  seed: number;
  maxNewTokens: number;
  samples: GeneratedSample[];
  generatedTokens: number;
  seconds: number;
  tokensPerSecond: number;
}

/** The tokenizer to use: the one asked for, the checkpoint's tokenizer.json, or the dataset's byte tokenizer. */
async function pickTokenizer(opts: GenerateCheckpointOptions, dataset: TokenDataset | undefined): Promise<Tokenizer> {
  if (opts.tokenizer) return loadTokenizer(opts.tokenizer);
  if (existsSync(path.join(opts.checkpoint, 'tokenizer.json'))) return loadTokenizer(opts.checkpoint);
  if (!dataset || dataset.tokenizer.name === 'byte') return loadTokenizer('byte');
  throw new DistillError('E_TOKENIZER', `no tokenizer for ${opts.data ?? 'the dataset'}`, {
    expected: `the tokenizer the dataset was made with (${dataset.tokenizer.name})`,
    found: `no tokenizer.json in ${opts.checkpoint}`,
    hint: 'pass `tokenizer` with that tokenizer.json',
    field: 'tokenizer',
  });
}

function checkTokenizer(
  tok: Tokenizer,
  vocabSize: number,
  dataset: TokenDataset | undefined,
  opts: GenerateCheckpointOptions,
): void {
  if (tok.vocabSize > vocabSize) {
    throw new DistillError('E_TOKENIZER', `tokenizer ${tok.name} does not fit checkpoint ${opts.checkpoint}`, {
      expected: `a vocabulary of at most ${vocabSize} ids (the model's)`,
      found: `${tok.vocabSize} ids`,
      hint: 'pass `tokenizer` with the tokenizer the model was trained with',
      subject: opts.checkpoint,
    });
  }
  if (dataset && dataset.tokenizer.sha256 !== tok.sha256) {
    throw new DistillError('E_TOKENIZER', `${opts.data ?? 'the dataset'} was made with another tokenizer`, {
      expected: `${dataset.tokenizer.name} (sha256 ${dataset.tokenizer.sha256.slice(0, 12)}…)`,
      found: `${tok.name} (sha256 ${tok.sha256.slice(0, 12)}…)`,
      hint: 'pass `tokenizer` with the tokenizer the dataset was prepared with',
      subject: opts.data,
    });
  }
}

/** Prompt id rows: each text prompt alone, or `rows` dataset sequences cut to `promptTokens` (one batch). */
function promptGroups(
  opts: GenerateCheckpointOptions,
  tok: Tokenizer,
  dataset: TokenDataset | undefined,
): number[][][] {
  if (dataset) {
    const rows = Math.min(opts.rows ?? 4, dataset.numSequences);
    const P = opts.promptTokens ?? Math.max(1, Math.floor(dataset.seqLen / 2));
    if (!Number.isInteger(P) || P < 1 || P > dataset.seqLen) {
      throw new DistillError('E_CONFIG', 'the prompt length does not fit the dataset sequences', {
        expected: `1 ≤ \`promptTokens\` ≤ ${dataset.seqLen}`,
        found: String(P),
        field: 'promptTokens',
      });
    }
    if (rows < 1) throw new DistillError('E_DATA', `${opts.data ?? 'the dataset'} holds no sequences`, {});
    return [Array.from({ length: rows }, (_, i) => Array.from(dataset.sequence(i).subarray(0, P)))];
  }
  return (opts.prompts ?? []).map((text) => {
    const ids = tok.encode(text);
    if (ids.length === 0) {
      throw new DistillError('E_USAGE', 'an empty prompt', { expected: 'text that tokenizes to at least one id' });
    }
    return [ids];
  });
}

export async function generateFromCheckpoint(opts: GenerateCheckpointOptions): Promise<GenerateCheckpointResult> {
  if ((opts.prompts?.length ?? 0) > 0 === (opts.data !== undefined)) {
    throw new DistillError('E_USAGE', 'give text prompts or a token dataset, not both and not neither', {
      expected: '`prompts` or `data`',
    });
  }
  const ck = loadCheckpoint(opts.checkpoint);
  const c = ck.config;
  const dataset = opts.data !== undefined ? await openTokenDataset(opts.data) : undefined;
  if (dataset && dataset.vocabSize !== c.vocabSize) {
    throw new DistillError('E_CONFIG', `checkpoint ${opts.checkpoint} has another vocabulary than ${opts.data}`, {
      expected: `V = ${dataset.vocabSize} (tokenizer ${dataset.tokenizer.name})`,
      found: `V = ${c.vocabSize}`,
      subject: opts.checkpoint,
    });
  }
  const tok = await pickTokenizer(opts, dataset);
  checkTokenizer(tok, c.vocabSize, dataset, opts);
  const sampling: SamplingOptions = {
    temperature: opts.sampling?.temperature ?? 1,
    ...(opts.sampling?.topK !== undefined ? { topK: opts.sampling.topK } : {}),
    ...(opts.sampling?.topP !== undefined ? { topP: opts.sampling.topP } : {}),
  };
  const seed = opts.seed ?? 0;
  const maxNew = opts.maxNewTokens ?? 64;
  const groups = promptGroups(opts, tok, dataset);
  for (const g of groups) {
    const P = g[0]?.length ?? 0;
    if (P + maxNew > c.contextLength) {
      throw new DistillError('E_CONFIG', 'the prompt and the new tokens do not fit the model context', {
        expected: `prompt + \`maxNewTokens\` ≤ contextLength = ${c.contextLength}`,
        found: `${P} prompt tokens + ${maxNew}`,
        hint:
          P < c.contextLength
            ? `lower \`maxNewTokens\` to ${c.contextLength - P} or shorten the prompt`
            : 'shorten the prompt',
      });
    }
  }
  const engine = createEngine(c, opts.backend ? { backend: opts.backend } : {});
  const sampler = new Sampler(seed);
  const total = groups.reduce((n, g) => n + g.length * maxNew, 0);
  const samples: GeneratedSample[] = [];
  let done = 0;
  const t0 = performance.now();
  try {
    for (const g of groups) {
      const P = g[0]?.length ?? 0;
      const r = generate(
        engine,
        ck.params,
        {
          prompts: Uint32Array.from(g.flat()),
          nSeq: g.length,
          promptLen: P,
          maxNewTokens: maxNew,
          sampling,
          ...(opts.stopAtEot !== false ? { stopToken: tok.eotId } : {}),
        },
        sampler,
        {
          onLogits: () => {
            done += g.length;
            opts.progress?.({ phase: 'generate', done, total, unit: 'tokens' });
          },
        },
      );
      g.forEach((promptIds, s) => {
        const n = at(r.generated, s);
        const row = r.tokens.subarray(s * (P + maxNew) + P, s * (P + maxNew) + P + n);
        const ids = Array.from(row);
        const stopped = opts.stopAtEot !== false && ids.at(-1) === tok.eotId;
        samples.push({
          prompt: tok.decode(promptIds),
          completion: tok.decode(stopped ? ids.slice(0, -1) : ids),
          promptIds,
          ids,
          stopped,
        });
      });
    }
  } finally {
    engine.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  const generatedTokens = samples.reduce((n, s) => n + s.ids.length, 0);
  return {
    checkpoint: opts.checkpoint,
    tokenizer: tok.name,
    sampling,
    seed,
    maxNewTokens: maxNew,
    samples,
    generatedTokens,
    seconds,
    tokensPerSecond: generatedTokens / Math.max(seconds, 1e-9),
  };
}
