// `distill eval`: a student checkpoint on a held-out token dataset (S sequences × T). The engine's forward
// gives final-norm hidden states [B·T × d] per batch; the LM head (tied embedding or lm_head [V × d]) turns
// them into logits [B·T × V] one batch at a time. Metrics come from src/eval/metrics.ts; the teacher's side
// from its ONNX model (teacher-eval.ts) and/or its logit cache. Writes <checkpoint>/eval.json (docs/reports.md).
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DistillError } from '../core/errors.js';
import type { ProgressFn } from '../core/types.js';
import { assembleTokens, checkCacheMatchesDataset, openTokenDataset, type TokenDataset } from '../data/index.js';
import { createEngine, loadCheckpoint, paramLayout, type EngineBackend } from '../engine/index.js';
import { openCache } from '../store/index.js';
import { EvalAccumulator, positionArraysFromLogits, type CalibrationBin } from './metrics.js';
import { teacherHeldOut, type TeacherHeldOut } from './teacher-eval.js';

export interface EvaluateOptions {
  /** Student checkpoint folder (config.json + model.safetensors). */
  checkpoint: string;
  /** Held-out token dataset (Arrow). */
  data: string;
  /** Logit cache made from `data`: the KL is measured on its top-k support, agreement against its top-1. */
  cache?: string;
  /** ONNX teacher (its CE on the same tokens; its own top-k when no cache), or a pass already computed. */
  teacher?: string | TeacherHeldOut;
  /** Support size when the teacher's own top-k is used (default 32). */
  topK?: number;
  /** Name in eval.json (default: the checkpoint folder's name). */
  name?: string;
  /** Marks the CE-only baseline (default: a checkpoint trained without a cache). */
  baseline?: boolean;
  /** Sequences per forward (default 16). */
  batchSize?: number;
  backend?: EngineBackend;
  /** The training cache's size, recorded as eval.json's `cache` when no --cache is read here (the report shows it). */
  cacheInfo?: { uri: string; bytesPerPosition: number };
  /** Write <checkpoint>/eval.json (default true). */
  write?: boolean;
  progress?: ProgressFn;
}

/** The content of eval.json. NaN metrics (no teacher) are written as null. */
export interface EvalReport {
  name: string;
  baseline: boolean;
  heldOutCE: number;
  perplexity: number;
  agreement: number;
  klToTeacher: number;
  ece: number;
  accuracy: number;
  positions: number;
  params: number;
  /** Held-out positions per second through the student (forward + LM head). */
  tokensPerSecond: number;
  teacher?: { heldOutCE: number; perplexity: number; model: string; tokensPerSecond: number };
  /** Where the teacher support came from, and its size. */
  support?: { source: 'cache' | 'teacher'; k: number };
  cache?: { uri: string; bytesPerPosition: number };
  calibration: CalibrationBin[];
  data: string;
  checkpoint: string;
  seconds: number;
}

export interface EvaluateResult extends EvalReport {
  /** Path of eval.json when written. */
  file?: string;
}

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
      for (let j = 0; j < d; j++) z += hidden[h + j]! * head[w + j]!;
      out[i * V + v] = z;
    }
  }
}

/** The cache's top-k over a held-out dataset, indexed by (seq, pos): ids/logp [S·T·k]. */
async function readCacheSupport(
  uri: string,
  dataset: TokenDataset,
): Promise<{ k: number; ids: Uint32Array; logp: Float32Array; bytesPerPosition: number }> {
  const reader = await openCache(uri, {
    expect: { tokenizerSha256: dataset.tokenizer.sha256, datasetSha256: dataset.sha256 },
  });
  try {
    checkCacheMatchesDataset(reader.manifest, dataset, uri);
    const k = reader.manifest.inputs.k;
    const T = dataset.seqLen;
    const ids = new Uint32Array(dataset.numSequences * T * k);
    const logp = new Float32Array(dataset.numSequences * T * k).fill(-Infinity);
    const seen = new Uint8Array(dataset.numSequences);
    for await (const s of reader.sequences({ seed: 0, epoch: 0, reuse: true })) {
      ids.set(s.rows.ids.subarray(0, T * k), s.seq * T * k);
      logp.set(s.rows.logp.subarray(0, T * k), s.seq * T * k);
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
    };
  } finally {
    await reader.close();
  }
}

function readTrainerState(dir: string): Record<string, any> | undefined {
  const f = path.join(dir, 'trainer-state.json');
  if (!existsSync(f)) return undefined;
  try {
    return JSON.parse(readFileSync(f, 'utf8'));
  } catch {
    return undefined;
  }
}

export async function evaluateCheckpoint(opts: EvaluateOptions): Promise<EvaluateResult> {
  const started = performance.now();
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
      hint: 'prepare a held-out split with `distill data prepare --val-fraction`',
    });
  const state = readTrainerState(opts.checkpoint);
  const baseline = opts.baseline ?? (state ? state.run?.cache === null || state.run?.cache === undefined : false);

  const cache = opts.cache ? await readCacheSupport(opts.cache, dataset) : undefined;
  let teacher: TeacherHeldOut | undefined;
  if (typeof opts.teacher === 'string') {
    teacher = await teacherHeldOut(opts.teacher, dataset, {
      k: cache?.k ?? opts.topK ?? 32,
      ...(opts.progress ? { progress: opts.progress } : {}),
    });
  } else if (opts.teacher) {
    teacher = opts.teacher;
    if (teacher.datasetSha256 !== dataset.sha256 || teacher.seqLen !== dataset.seqLen) {
      throw new DistillError('E_USAGE', `the teacher pass was computed on another dataset than ${opts.data}`, {
        expected: dataset.sha256,
        found: teacher.datasetSha256,
      });
    }
  }
  const support = cache
    ? { k: cache.k, ids: cache.ids, logp: cache.logp, source: 'cache' as const }
    : teacher
      ? { k: teacher.k, ids: teacher.ids, logp: teacher.logp, source: 'teacher' as const }
      : undefined;

  const T = dataset.seqLen;
  const V = c.vocabSize;
  const S = dataset.numSequences;
  const B = opts.batchSize ?? 16;
  const slot = paramLayout(c).find((s) => s.name === (c.tieEmbeddings ? 'embed' : 'lm_head'))!;
  const head = ck.params.subarray(slot.offset, slot.offset + slot.size);
  const engine = createEngine(c, opts.backend ? { backend: opts.backend } : {});
  const acc = new EvalAccumulator();
  const logits = new Float32Array(B * T * V);
  let studentSeconds = 0;
  try {
    for (let s0 = 0; s0 < S; s0 += B) {
      const nb = Math.min(B, S - s0);
      const seqs = Array.from({ length: nb }, (_, i) => s0 + i);
      const { tokens, labels } = assembleTokens(dataset, seqs);
      const n = nb * T;
      const t0 = performance.now();
      const hidden = engine.forward(ck.params, tokens, nb, T);
      const z = logits.subarray(0, n * V);
      lmHeadLogits(hidden, head, n, c.dModel, V, z);
      studentSeconds += (performance.now() - t0) / 1000;
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
        if (!cache) arrays.teacherTop1 = teacher.top1.subarray(lo, lo + n);
      }
      acc.add(arrays);
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
  const m = acc.result();
  const report: EvalReport = {
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
    tokensPerSecond: (S * T) / Math.max(studentSeconds, 1e-9),
    ...(teacher && m.teacher
      ? { teacher: { ...m.teacher, model: teacher.model, tokensPerSecond: teacher.tokensPerSecond } }
      : {}),
    ...(support ? { support: { source: support.source, k: support.k } } : {}),
    ...(cache && opts.cache
      ? { cache: { uri: opts.cache, bytesPerPosition: cache.bytesPerPosition } }
      : opts.cacheInfo
        ? { cache: opts.cacheInfo }
        : {}),
    calibration: acc.calibration(),
    data: opts.data,
    checkpoint: opts.checkpoint,
    seconds: (performance.now() - started) / 1000,
  };
  if (opts.write === false) return report;
  const file = path.join(opts.checkpoint, 'eval.json');
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, `${JSON.stringify(report, null, 2)}\n`);
    renameSync(tmp, file);
  } catch (err) {
    throw new DistillError('E_IO', `cannot write ${file}`, { subject: file, found: (err as Error).message });
  }
  return { ...report, file };
}
