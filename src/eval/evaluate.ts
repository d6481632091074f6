// `distill eval`: a student checkpoint on a held-out token dataset (S sequences × T). The engine's forward
// gives final-norm hidden states [B·T × d] per batch; the LM head (tied embedding or lm_head [V × d]) turns
// them into logits [B·T × V] one batch at a time. Metrics come from src/eval/metrics.ts; the teacher's side
// from its ONNX model (teacher-eval.ts) and/or its logit cache. Writes <checkpoint>/eval.json (docs/reports.md).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { at } from '../core/arrays.js';
import { DistillError } from '../core/errors.js';
import { activeParameterCount, lmHeadSlot } from '../core/model.js';
import type { MoeLayerMetrics } from '../core/moe.js';
import type { ProgressFn } from '../core/types.js';
import { assembleTokens, checkCacheMatchesDataset, openTokenDataset, type TokenDataset } from '../data/index.js';
import {
  availableMemory,
  batchBytes,
  checkMemory,
  createEngine,
  loadCheckpoint,
  mergeMoeStats,
  moeMetricsRow,
  readTrainerState,
  type EngineBackend,
  type LoadedCheckpoint,
  type MoeLayerStats,
} from '../engine/index.js';
import { makeDir, openCache, type S3Options } from '../store/index.js';
import { writeEvalFile, type EvalReport } from './eval-file.js';
import { meanWithStdErr, type SequenceSums } from './uncertainty.js';
import { EvalAccumulator, positionArraysFromLogits } from './metrics.js';
import { teacherHeldOut, type TeacherHeldOut } from './teacher-eval.js';
import { teacherParameters } from './teacher-size.js';

export interface EvaluateOptions {
  /** Student checkpoint folder (config.json + model.safetensors). */
  checkpoint: string;
  /** Held-out token dataset (Arrow). */
  data: string;
  /** Logit cache made from `data`: the KL is measured on its top-k support, agreement against its top-1. */
  cache?: string;
  /** S3 connection options for an s3:// cache. */
  s3?: S3Options;
  /** ONNX teacher (its CE on the same tokens; its own top-k when no cache), or a pass already computed. */
  teacher?: string | TeacherHeldOut;
  /** Support size when the teacher's own top-k is used (default 32). */
  topK?: number;
  /** Name in eval.json (default: the checkpoint folder's name). */
  name?: string;
  /** Marks the CE-only baseline (default: a checkpoint trained without a cache). */
  baseline?: boolean;
  /** Sequences per forward (default 16; at most the dataset's). */
  batchSize?: number;
  /** Bytes of memory the evaluation may use (default: what the machine has free). */
  availableMemory?: number;
  backend?: EngineBackend;
  /** The training cache's size, recorded as eval.json's `cache` when no `cache` is read here (the report shows it). */
  cacheInfo?: { uri: string; bytesPerPosition: number };
  /** Write eval.json (default true), to `out` (default <checkpoint>/eval.json). */
  write?: boolean;
  out?: string;
  /** Replace an existing eval.json (default: refuse before any work). */
  force?: boolean;
  progress?: ProgressFn;
}

export type EvaluateResult = EvalReport & {
  name: string;
  data: string;
  checkpoint: string;
  /** Path of eval.json when written. */
  file?: string;
};

/** logits [N × V] = hidden [N × d] · head[V × d]ᵀ (float32 accumulation in a float64 register). */
function lmHeadLogits(
  hidden: Float32Array,
  head: Float32Array,
  n: number,
  d: number,
  V: number,
  out: Float32Array,
): void {
  for (let i = 0; i < n; i++) {
    const h = i * d;
    for (let v = 0; v < V; v++) {
      const w = v * d;
      let z = 0;
      for (let j = 0; j < d; j++) z += at(hidden, h + j) * at(head, w + j);
      out[i * V + v] = z;
    }
  }
}

/** The cache's top-k over a held-out dataset, indexed by (seq, pos): ids/logp [S·T·k]. */
async function readCacheSupport(
  uri: string,
  dataset: TokenDataset,
  s3: S3Options | undefined,
): Promise<{
  k: number;
  ids: Uint32Array;
  logp: Float32Array;
  bytesPerPosition: number;
  teacher: { name: string; sha256: string };
}> {
  const reader = await openCache(uri, {
    s3,
    expect: { tokenizerSha256: dataset.tokenizer.sha256, datasetSha256: dataset.sha256 },
  });
  try {
    checkCacheMatchesDataset(reader.manifest, dataset, uri);
    const k = reader.manifest.inputs.k;
    const T = dataset.seqLen;
    const ids = new Uint32Array(dataset.numSequences * T * k);
    const logp = new Float32Array(dataset.numSequences * T * k).fill(-Infinity);
    const seen = new Uint8Array(dataset.numSequences);
    // A masked cache has rows only at the positions the loss mask scores (the rest stay padding: logp −inf,
    // where the labels are −100 and nothing is measured); a sequence it scores nowhere has no rows at all.
    const masked = reader.manifest.inputs.dataset.scoredPositions !== undefined;
    if (masked) for (let s = 0; s < dataset.numSequences; s++) if (!dataset.sequenceMask(s)?.includes(1)) seen[s] = 1;
    for await (const s of reader.sequences({ seed: 0, epoch: 0, reuse: true })) {
      if (s.seq >= dataset.numSequences) continue; // checkCacheMatchesDataset has matched the sequence count
      s.rows.pos.forEach((p, i) => {
        ids.set(s.rows.ids.subarray(i * k, (i + 1) * k), (s.seq * T + p) * k);
        logp.set(s.rows.logp.subarray(i * k, (i + 1) * k), (s.seq * T + p) * k);
      });
      seen[s.seq] = 1;
    }
    const missing = seen.indexOf(0);
    if (missing >= 0)
      throw new DistillError(
        'E_CACHE_INCOMPLETE',
        `the logit cache ${uri} lacks sequence ${missing} of ${dataset.path}`,
        { subject: uri, hint: 'finish the teacher run on this dataset' },
      );
    return {
      k,
      ids,
      logp,
      bytesPerPosition: reader.manifest.rows ? reader.manifest.bytes / reader.manifest.rows : NaN,
      teacher: reader.manifest.inputs.teacher,
    };
  } finally {
    await reader.close();
  }
}

/** The teacher top-k the KL is measured on: ids/logp [S·T·k], from the cache or the teacher's own pass. */
interface Support {
  source: 'cache' | 'teacher';
  k: number;
  ids: ArrayLike<number> & { subarray(a: number, b: number): ArrayLike<number> };
  logp: Float32Array;
}

type CacheSupport = Awaited<ReturnType<typeof readCacheSupport>>;

/** The checkpoint and the held-out dataset, refused when they do not fit each other. */
async function openInputs(opts: EvaluateOptions): Promise<{ ck: LoadedCheckpoint; dataset: TokenDataset }> {
  const ck = loadCheckpoint(opts.checkpoint);
  const dataset = await openTokenDataset(opts.data);
  const c = ck.config;
  if (c.vocabSize !== dataset.vocabSize) {
    throw new DistillError('E_CONFIG', `checkpoint ${opts.checkpoint} has another vocabulary than ${opts.data}`, {
      expected: `V = ${dataset.vocabSize} (tokenizer ${dataset.tokenizer.name})`,
      found: `V = ${c.vocabSize}`,
      subject: opts.checkpoint,
    });
  }
  if (dataset.seqLen > c.contextLength) {
    throw new DistillError('E_CONFIG', `the sequences of ${opts.data} are longer than the student's context`, {
      expected: `T ≤ ${c.contextLength}`,
      found: `T = ${dataset.seqLen}`,
      subject: opts.data,
    });
  }
  if (dataset.numSequences === 0)
    throw new DistillError('E_DATA', `${opts.data} holds no sequences`, {
      subject: opts.data,
      hint: 'prepare a held-out split with `distill data prepare` and a validation fraction',
    });
  return { ck, dataset };
}

/** The teacher's pass over the dataset: run now from an ONNX file, or one computed earlier (checked to match). */
async function teacherPass(
  opts: EvaluateOptions,
  dataset: TokenDataset,
  cache: CacheSupport | undefined,
): Promise<TeacherHeldOut | undefined> {
  if (typeof opts.teacher === 'string') {
    return teacherHeldOut(opts.teacher, dataset, {
      k: cache?.k ?? opts.topK ?? 32,
      ...(opts.progress ? { progress: opts.progress } : {}),
    });
  }
  const teacher = opts.teacher;
  if (teacher && (teacher.datasetSha256 !== dataset.sha256 || teacher.seqLen !== dataset.seqLen)) {
    throw new DistillError('E_USAGE', `the teacher pass was computed on another dataset than ${opts.data}`, {
      expected: dataset.sha256,
      found: teacher.datasetSha256,
    });
  }
  return teacher;
}

/**
 * The student over every sequence, B at a time: forward, LM head, per-position arrays into the accumulator.
 * Returns the accumulator, the per-sequence NLL sums, the seconds spent in the student (forward + LM head)
 * and, for an MoE student, the routing metrics of each MoE layer over all the tokens.
 */
function runStudent(
  ck: LoadedCheckpoint,
  dataset: TokenDataset,
  support: Support | undefined,
  teacher: TeacherHeldOut | undefined,
  cacheTop1: boolean,
  opts: EvaluateOptions,
): { acc: EvalAccumulator; sums: SequenceSums; seconds: number; moe: MoeLayerMetrics[] } {
  const c = ck.config;
  const T = dataset.seqLen;
  const V = c.vocabSize;
  const S = dataset.numSequences;
  // A batch past the dataset only adds padding; one past the machine is refused before its logits exist.
  const B = Math.min(opts.batchSize ?? 16, S);
  const perSequence = 4 * T * V + batchBytes(c, 1, T);
  checkMemory(
    `evaluating ${path.basename(opts.checkpoint)} on batches of ${B} × ${T}`,
    { parameters: 4 * ck.params.length, 'logits and activations': B * perSequence },
    opts.availableMemory ?? availableMemory(),
    `lower \`batchSize\` to ${Math.max(1, Math.floor(((opts.availableMemory ?? availableMemory()) - 4 * ck.params.length) / perSequence))} or less`,
  );
  const slot = lmHeadSlot(c);
  const head = ck.params.subarray(slot.offset, slot.offset + slot.size);
  const engine = createEngine(c, opts.backend ? { backend: opts.backend } : {});
  const acc = new EvalAccumulator();
  const sums: SequenceSums = { nll: new Array<number>(S).fill(0), positions: new Array<number>(S).fill(0) };
  const logits = new Float32Array(B * T * V);
  const routing: MoeLayerStats[][] = [];
  let seconds = 0;
  try {
    for (let s0 = 0; s0 < S; s0 += B) {
      const nb = Math.min(B, S - s0);
      const seqs = Array.from({ length: nb }, (_, i) => s0 + i);
      const { tokens, labels } = assembleTokens(dataset, seqs);
      const n = nb * T;
      const t0 = performance.now();
      const hidden = engine.forward(ck.params, tokens, nb, T);
      const stats = engine.moeStats?.() ?? [];
      if (stats.length) routing.push(stats);
      const z = logits.subarray(0, n * V);
      lmHeadLogits(hidden, head, n, c.dModel, V, z);
      seconds += (performance.now() - t0) / 1000;
      const lo = s0 * T;
      const sup = support
        ? {
            ids: support.ids.subarray(lo * support.k, (lo + n) * support.k),
            logp: support.logp.subarray(lo * support.k, (lo + n) * support.k),
            k: support.k,
          }
        : undefined;
      const arrays = positionArraysFromLogits(z, n, V, labels, sup);
      if (teacher) {
        arrays.teacherLabelLogp = teacher.labelLogp.subarray(lo, lo + n);
        // With a cache the agreement is against its top-1 (the first cached id), as docs/reports.md defines it.
        if (!cacheTop1) arrays.teacherTop1 = teacher.top1.subarray(lo, lo + n);
      }
      acc.add(arrays);
      for (let i = 0; i < n; i++) {
        if (arrays.mask && !arrays.mask[i]) continue;
        const s = s0 + Math.floor(i / T);
        sums.nll[s] = (sums.nll[s] ?? 0) - (arrays.labelLogp[i] ?? 0);
        sums.positions[s] = (sums.positions[s] ?? 0) + 1;
      }
      opts.progress?.({
        phase: 'eval',
        done: (s0 + nb) * T,
        total: S * T,
        unit: 'tokens',
        message: path.basename(opts.checkpoint),
      });
    }
  } finally {
    engine.dispose();
  }
  const moe = c.moe ? mergeMoeStats(c, routing).map((s) => moeMetricsRow(s)) : [];
  return { acc, sums, seconds, moe };
}

/** Where eval.json goes; an existing one is kept unless `force`, and its folder is made before any work. */
function outputFile(opts: EvaluateOptions): string {
  const file = opts.out ?? path.join(opts.checkpoint, 'eval.json');
  if (opts.write === false) return file;
  if (!opts.force && existsSync(file))
    throw new DistillError('E_USAGE', `${file} already exists`, {
      subject: file,
      field: 'out',
      hint: 'pass `force` to replace it, or write this evaluation elsewhere with `out`',
    });
  // A folder that cannot be made (read-only, under a file, under /proc) fails before the work.
  makeDir(path.dirname(file));
  return file;
}

export async function evaluateCheckpoint(opts: EvaluateOptions): Promise<EvaluateResult> {
  const started = performance.now();
  const { ck, dataset } = await openInputs(opts);
  const file = outputFile(opts);
  // Detected from the training run: trained without a cache means the CE-only baseline.
  const state = readTrainerState(opts.checkpoint);
  const baseline = opts.baseline ?? (state ? state.run.cache === null : false);
  const cache = opts.cache ? await readCacheSupport(opts.cache, dataset, opts.s3) : undefined;
  const teacher = await teacherPass(opts, dataset, cache);
  const support: Support | undefined = cache
    ? { source: 'cache', k: cache.k, ids: cache.ids, logp: cache.logp }
    : teacher
      ? { source: 'teacher', k: teacher.k, ids: teacher.ids, logp: teacher.logp }
      : undefined;
  const student = runStudent(ck, dataset, support, teacher, cache !== undefined, opts);

  const m = student.acc.result();
  const positions = dataset.numSequences * dataset.seqLen;
  const report: EvaluateResult = {
    name: opts.name ?? path.basename(path.resolve(opts.checkpoint)),
    baseline,
    heldOutCE: m.heldOutCE,
    perplexity: m.perplexity,
    agreement: m.agreement,
    klToTeacher: m.klToTeacher,
    ece: m.ece,
    accuracy: m.accuracy,
    positions: m.positions,
    params: ck.params.length,
    ...(ck.config.moe ? { activeParams: activeParameterCount(ck.config) } : {}),
    tokensPerSecond: positions / Math.max(student.seconds, 1e-9),
    ...(teacher && m.teacher
      ? {
          teacher: {
            ...m.teacher,
            model: teacher.model,
            tokensPerSecond: teacher.tokensPerSecond,
            ...teacherParameters(teacher.model),
          },
        }
      : {}),
    ...(support ? { support: { source: support.source, k: support.k } } : {}),
    ...(cache && opts.cache
      ? { cache: { uri: opts.cache, bytesPerPosition: cache.bytesPerPosition } }
      : opts.cacheInfo
        ? { cache: opts.cacheInfo }
        : {}),
    calibration: student.acc.calibration(),
    ...(student.moe.length ? { moe: student.moe } : {}),
    data: opts.data,
    heldOut: { sha256: dataset.sha256, sequences: dataset.numSequences, seqLen: dataset.seqLen },
    ...(cache
      ? { reference: { ...cache.teacher, source: 'cache' as const } }
      : teacher?.sha256
        ? { reference: { name: path.basename(teacher.model), sha256: teacher.sha256, source: 'model' as const } }
        : {}),
    heldOutCEStdErr: meanWithStdErr(student.sums).stdErr,
    sequenceSums: {
      nll: student.sums.nll.map((x) => Math.round(x * 1e4) / 1e4),
      positions: student.sums.positions,
    },
    checkpoint: opts.checkpoint,
    seconds: (performance.now() - started) / 1000,
  };
  if (opts.write === false) return report;
  writeEvalFile(file, report);
  return { ...report, file };
}
