// A teacher run's options and their validation: the backend is opened (teacher checks), the token dataset
// read and checked against it, and the cache inputs resolved, all before anything is written. Each worker
// process repeats this from the same plain options, so every one of them runs the same checks.
import { DistillError } from '../core/errors.js';
import type { ProgressFn } from '../core/types.js';
import { openTokenDataset, type TokenDataset } from '../data/index.js';
import {
  idsEncodingFor,
  type BodyCompression,
  type CacheInputs,
  type LogpEncoding,
  type S3Options,
} from '../store/index.js';
import { z } from 'zod';
import { backends, DEFAULT_BACKEND, openBackend, type Device, type TeacherBackend } from './backends/index.js';
import { availableMemory, checkMemory } from '../engine/index.js';
import { defaultShardCount, planShards } from './plan.js';

export interface TeacherRunOptions {
  /** Registered teacher backend (default onnx). */
  backend?: string;
  /** ONNX teacher file (backend onnx). */
  model?: string;
  /** Server base URLs (backends vllm and sglang), e.g. http://teacher:8000. */
  endpoints?: string[];
  /** The model name the servers serve (GET /v1/models). */
  servedModel?: string;
  /** The served model's revision, recorded in the fingerprint (the server cannot be asked for it). */
  teacherRevision?: string;
  /** The served model's tokenizer (file or folder): its hash must equal the dataset's. */
  tokenizer?: string;
  /** V of a served model whose logits pad the tokenizer's vocabulary (default: the dataset's). */
  vocabSize?: number;
  /** Requests in flight over all endpoints (default 8 per endpoint). */
  maxInFlight?: number;
  /** Retries of a failing request before its shard fails (default 8). */
  maxRetries?: number;
  /** Seconds a request may take (default 600). */
  requestTimeout?: number;
  /** Backoff base in ms (default 500): retry n waits a uniform draw from [0, base · 2^n], at most 30 s. */
  retryBaseMs?: number;
  /** Threads that parse served replies (default: the cores left after the main thread, at most 4). */
  parseThreads?: number;
  data: string;
  /** Cache URI: a path, file://… or s3://bucket/prefix. */
  out: string;
  topK: number;
  temperature?: number;
  /** Multinomial draws per position (0 = none). */
  samples?: number;
  seed?: number;
  /** Shard count; default from the dataset size only (see defaultShardCount). */
  shards?: number;
  /** Local worker processes (default: one per device). */
  workers?: number;
  /** "cpu" or "cuda:0,1,…" (default cpu). */
  device?: string;
  /** Sequences per model call: session.run or request (default 8). */
  batchSize?: number;
  workerIndex?: number;
  numWorkers?: number;
  logp?: LogpEncoding;
  compression?: BodyCompression;
  /** ONNX Runtime intra-op threads per worker (default: cores / workers on CPU). */
  threads?: number;
  /** Accept a teacher whose V exceeds the tokenizer's (padded embedding tables). */
  allowPaddedVocab?: boolean;
  /** Write the manifest when every shard is committed (default true). */
  finalize?: boolean;
  s3?: S3Options;
  env?: NodeJS.ProcessEnv;
  onProgress?: ProgressFn;
  /** Stops starting shards (those in flight finish and commit) and skips the manifest: Ctrl-C. */
  signal?: AbortSignal;
}

/** The options as they travel to worker processes (no callbacks, no environment, no signal). */
export type PlainRunOptions = Omit<TeacherRunOptions, 'onProgress' | 'env' | 'signal'>;

/** Everything a worker needs, resolved and validated once (serializable to worker processes). */
export interface ResolvedRun {
  opts: PlainRunOptions;
  inputs: CacheInputs;
  numShards: number;
  batchSize: number;
  k: number;
  samples: number;
  /** Sequences the run keeps queued for the backend (twice its calls in flight), shared by the shards in flight. */
  queueSequences: number;
}

export interface Prepared {
  run: ResolvedRun;
  dataset: TokenDataset;
  /** Opened and checked, not started. */
  backend: TeacherBackend;
}

/** Run options that are a backend's parameters, and the parameter each one is (errors name the option field). */
const BACKEND_PARAMS: Partial<Record<keyof TeacherRunOptions, string>> = {
  model: 'model',
  endpoints: 'endpoints',
  servedModel: 'servedModel',
  teacherRevision: 'revision',
  tokenizer: 'tokenizer',
  vocabSize: 'vocabSize',
  maxInFlight: 'maxInFlight',
  maxRetries: 'maxRetries',
  requestTimeout: 'requestTimeout',
  retryBaseMs: 'retryBaseMs',
  parseThreads: 'parseThreads',
};

/** The backend id and its own parameters out of the run options; an option the backend does not take is refused. */
export function backendParams(opts: PlainRunOptions): { id: string; params: Record<string, unknown> } {
  const id = opts.backend ?? DEFAULT_BACKEND;
  const schema = backends.get(id).params;
  const takes = schema instanceof z.ZodObject ? (key: string) => key in schema.shape : () => true;
  const params: Record<string, unknown> = {};
  for (const [key, param] of Object.entries(BACKEND_PARAMS)) {
    const v = opts[key as keyof PlainRunOptions];
    if (v === undefined || !param) continue;
    if (!takes(param))
      throw new DistillError('E_USAGE', `\`${key}\` does not apply to the ${id} backend`, {
        field: key,
        found: `\`${key}\` ${Array.isArray(v) ? v.join(' ') : String(v)}`,
        hint: `the ${id} backend takes ${Object.entries(BACKEND_PARAMS)
          .filter(([, q]) => q && takes(q))
          .map(([k]) => `\`${k}\``)
          .join(', ')}`,
      });
    params[param] = v;
  }
  return { id, params };
}

function checkRunSettings(opts: PlainRunOptions): { samples: number; batchSize: number; temperature: number } {
  const temperature = opts.temperature ?? 1;
  const samples = opts.samples ?? 0;
  const batchSize = opts.batchSize ?? 8;
  if (!Number.isInteger(samples) || samples < 0 || samples > 65535)
    throw new DistillError('E_USAGE', 'invalid `samples`', {
      field: 'samples',
      expected: 'an integer in [0, 65535]',
      found: String(opts.samples),
    });
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new DistillError('E_USAGE', 'invalid `batchSize`', {
      field: 'batchSize',
      expected: 'an integer ≥ 1',
      found: String(opts.batchSize),
    });
  return { samples, batchSize, temperature };
}

/** Opens the dataset and checks it against the teacher's vocabulary: not empty, every id < V, the same V. */
async function checkedDataset(
  opts: PlainRunOptions,
  backend: TeacherBackend,
): Promise<{ dataset: TokenDataset; V: number }> {
  const dataset = await openTokenDataset(opts.data);
  if (dataset.numSequences === 0)
    throw new DistillError('E_DATA', `token dataset ${opts.data} is empty`, {
      expected: 'at least one sequence',
      found: '0 sequences',
      hint: 'prepare it from more text or with shorter sequences',
      subject: opts.data,
    });
  const { vocabSize, label } = backend.describe();
  const V = vocabSize ?? dataset.vocabSize;
  let maxAt = 0;
  let max = 0;
  for (let i = 0; i < dataset.tokens.length; i++) {
    const t = dataset.tokens[i] ?? 0;
    if (t > max) {
      max = t;
      maxAt = i;
    }
  }
  if (max >= V) {
    throw new DistillError('E_DATA', `token dataset ${opts.data} holds ids the teacher cannot embed`, {
      expected: `ids < V = ${V} (the teacher's vocabulary)`,
      found: `${max} at sequence ${Math.floor(maxAt / dataset.seqLen)}, position ${maxAt % dataset.seqLen}`,
      hint: 'prepare the dataset with the tokenizer the teacher was trained with',
      subject: opts.data,
    });
  }
  if (dataset.vocabSize !== V && !(opts.allowPaddedVocab && V > dataset.vocabSize)) {
    throw new DistillError('E_TOKENIZER', `the dataset's tokenizer and the teacher disagree on the vocabulary`, {
      expected: `V = ${V} (teacher ${label})`,
      found: `V = ${dataset.vocabSize} (tokenizer ${dataset.tokenizer.name} of ${opts.data})`,
      hint:
        V > dataset.vocabSize
          ? 'set `allowPaddedVocab` if the teacher only pads its embedding table'
          : 'prepare the dataset with the teacher’s tokenizer (its model folder)',
      subject: opts.data,
    });
  }
  const maxLen = backend.describe().maxSeqLen;
  if (maxLen !== null && dataset.seqLen > maxLen)
    throw new DistillError('E_DATA', `the dataset's sequences are longer than the teacher takes`, {
      expected: `T ≤ ${maxLen} (teacher ${label})`,
      found: `T = ${dataset.seqLen}`,
      hint: 'prepare the dataset with shorter sequences',
      subject: opts.data,
    });
  await backend.checkDataset(dataset, V);
  return { dataset, V };
}

/** Validates inputs in the order a user would fix them (teacher, dataset, the two together); nothing is written. */
/**
 * On the CPU a batch's logits [B × T × V] live in this process, three times over (the logits, the temperature's
 * division and the log-softmax the graph appends): a batch the machine cannot hold is refused before the session
 * allocates it.
 */
function checkBatchMemory(B: number, T: number, V: number): void {
  const perSequence = 3 * 4 * T * V;
  const available = availableMemory();
  checkMemory(
    `running the teacher on batches of ${B} × ${T} (V = ${V})`,
    { 'logits, three copies in the graph': B * perSequence },
    available,
    `lower \`batchSize\` to ${Math.max(1, Math.floor(available / perSequence))} or less`,
  );
}

export async function prepare(
  opts: PlainRunOptions,
  device: Device,
  threads: number | undefined,
  numShardsFixed?: number,
): Promise<Prepared> {
  const { samples, batchSize, temperature } = checkRunSettings(opts);
  const { id, params } = backendParams(opts);
  const backend = await openBackend(id, params, {
    k: opts.topK,
    temperature,
    samples,
    seed: opts.seed,
    device,
    threads,
  });
  try {
    const { dataset, V } = await checkedDataset(opts, backend);
    const numShards = numShardsFixed ?? opts.shards ?? defaultShardCount(dataset.numSequences, dataset.seqLen);
    planShards(dataset.numSequences, numShards);
    const d = backend.describe();
    if (d.kind === 'onnx' && device.kind === 'cpu')
      checkBatchMemory(Math.min(batchSize, dataset.numSequences), dataset.seqLen, V);
    const inputs: CacheInputs = {
      teacher: d.identity,
      tokenizer: dataset.tokenizer,
      dataset: {
        sha256: dataset.sha256,
        sequences: dataset.numSequences,
        seqLen: dataset.seqLen,
        // A dataset with a loss mask: the cache holds only the positions it scores.
        ...(dataset.lossMask ? { scoredPositions: dataset.scoredPositions } : {}),
      },
      vocabSize: V,
      k: opts.topK,
      temperature: d.temperature,
      // packed logp packs the ids with them (format v2); otherwise the narrowest plain id type for V.
      encodings: {
        ids: opts.logp === 'packed' ? 'packed' : idsEncodingFor(V),
        logp: opts.logp ?? 'float32',
        compression: opts.compression ?? 'none',
      },
      ...(d.samples > 0 ? { samples: d.samples } : {}),
    };
    const run: ResolvedRun = {
      opts,
      inputs,
      numShards,
      batchSize,
      k: opts.topK,
      samples: d.samples,
      queueSequences: 2 * d.inFlight * batchSize,
    };
    return { run, dataset, backend };
  } catch (e) {
    await backend.close();
    throw e;
  }
}
