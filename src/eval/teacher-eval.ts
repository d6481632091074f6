// The teacher's side of a held-out evaluation: runs an ONNX teacher (input_ids int64 [B, T] → logits
// float [B, T, V]) over every sequence of a token dataset and keeps, per position (N = sequences·T):
// log p(label) [N], argmax [N] and the top-k ids/log-probs [N·k] (log-softmax over the full vocabulary).
import { readFileSync, existsSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { at } from '../core/arrays.js';
import { DistillError } from '../core/errors.js';
import type { ProgressFn } from '../core/types.js';
import { sha256Hex } from '../store/index.js';
import { assembleTokens, type TokenDatasetLike } from '../data/sequences.js';
import { checkTeacherContract, createSession, decodeModel, int64Ids, LOGITS_NAME } from '../teacher/backends/index.js';

export interface TeacherHeldOut {
  /** The model file it came from. */
  model: string;
  /** SHA-256 of the model file (what eval.json records as the teacher). */
  sha256?: string;
  /** Dataset hash it was computed on (a second dataset is refused). */
  datasetSha256: string;
  vocabSize: number;
  seqLen: number;
  k: number;
  /** log p_teacher(label) [N]; NaN at each sequence's last position (no label). */
  labelLogp: Float64Array;
  top1: Int32Array;
  ids: Int32Array;
  logp: Float32Array;
  positions: number;
  seconds: number;
  tokensPerSecond: number;
}

export interface TeacherHeldOutOptions {
  /** Top-k kept per position (the support the KL is measured on). */
  k: number;
  /** Sequences per ONNX Runtime call (default 16). */
  batchSize?: number;
  /** ONNX Runtime intra-op threads (default: its own choice). */
  threads?: number;
  progress?: ProgressFn;
}

/** Keeps the k largest entries of row [o, o+V) in descending order (ties: lower id first). */
function topK(z: ArrayLike<number>, o: number, V: number, k: number, ids: Int32Array, vals: Float64Array): void {
  let filled = 0;
  for (let v = 0; v < V; v++) {
    const x = at(z, o + v);
    if (filled === k && x <= at(vals, k - 1)) continue;
    let j = filled < k ? filled++ : k - 1;
    while (j > 0 && at(vals, j - 1) < x) {
      vals[j] = at(vals, j - 1);
      ids[j] = at(ids, j - 1);
      j--;
    }
    vals[j] = x;
    ids[j] = v;
  }
}

/** What the pass keeps per position n (N = S·T): see TeacherHeldOut. */
type PassArrays = Pick<TeacherHeldOut, 'labelLogp' | 'top1' | 'ids' | 'logp'>;

/**
 * Reads the teacher file, checks it against the teacher contract and the dataset's vocabulary, and opens
 * an ONNX Runtime session on the CPU.
 */
async function openTeacher(model: string, V: number, k: number, threads: number | undefined) {
  if (!existsSync(model))
    throw new DistillError('E_NOT_FOUND', `teacher model ${model} not found`, {
      subject: model,
      hint: 'pass an ONNX file under the teacher contract (input_ids → logits)',
    });
  const bytes = readFileSync(model);
  const contract = checkTeacherContract(decodeModel(bytes, model), model);
  if (contract.vocabSize !== null && contract.vocabSize !== V) {
    throw new DistillError('E_CONFIG', `teacher ${model} has another vocabulary than the token dataset`, {
      expected: `V = ${V}`,
      found: `V = ${contract.vocabSize}`,
      subject: model,
    });
  }
  if (!Number.isInteger(k) || k < 1 || k > V)
    throw new DistillError('E_USAGE', 'invalid top-k for the teacher support', {
      expected: `an integer 1 ≤ k ≤ ${V}`,
      found: String(k),
    });
  const session = await createSession(bytes, model, { device: { kind: 'cpu' }, ...(threads ? { threads } : {}) });
  return { session, sha256: sha256Hex(bytes) };
}

/**
 * Scores `rows` positions of teacher logits z [rows × V] starting at global position n0: log-softmax over the
 * full vocabulary, the label's log-prob, the argmax and the top-k into `out`.
 */
function scoreRows(
  z: Float32Array,
  labels: Int32Array,
  rows: number,
  V: number,
  k: number,
  n0: number,
  out: PassArrays,
) {
  const rowIds = new Int32Array(k);
  const rowVals = new Float64Array(k);
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    let m = -Infinity;
    for (let v = 0; v < V; v++) {
      const x = at(z, o + v);
      if (x > m) m = x;
    }
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(at(z, o + v) - m);
    const lse = m + Math.log(sum);
    const n = n0 + r;
    const y = at(labels, r);
    out.labelLogp[n] = y >= 0 && y < V ? at(z, o + y) - lse : NaN;
    topK(z, o, V, k, rowIds, rowVals);
    out.top1[n] = at(rowIds, 0);
    for (let j = 0; j < k; j++) {
      out.ids[n * k + j] = at(rowIds, j);
      out.logp[n * k + j] = at(rowVals, j) - lse;
    }
  }
}

export async function teacherHeldOut(
  model: string,
  dataset: TokenDatasetLike,
  opts: TeacherHeldOutOptions,
): Promise<TeacherHeldOut> {
  const V = dataset.vocabSize;
  const k = opts.k;
  const { session, sha256 } = await openTeacher(model, V, k, opts.threads);
  const T = dataset.seqLen;
  const S = dataset.numSequences;
  const N = S * T;
  const out: PassArrays = {
    labelLogp: new Float64Array(N),
    top1: new Int32Array(N),
    ids: new Int32Array(N * k),
    logp: new Float32Array(N * k),
  };
  const B = opts.batchSize ?? 16;
  const started = performance.now();
  try {
    for (let s0 = 0; s0 < S; s0 += B) {
      const seqs = Array.from({ length: Math.min(B, S - s0) }, (_, i) => s0 + i);
      const { tokens, labels } = assembleTokens(dataset, seqs);
      const res = await session.run({ input_ids: new ort.Tensor('int64', int64Ids(tokens), [seqs.length, T]) });
      const t = res[LOGITS_NAME];
      if (!t || t.dims.length !== 3 || Number(t.dims[2]) !== V) {
        throw new DistillError('E_MODEL', `teacher ${model} returned logits of the wrong shape`, {
          expected: `[${seqs.length}, ${T}, ${V}]`,
          found: t ? `[${t.dims.join(', ')}]` : `no ${LOGITS_NAME} output`,
          subject: model,
        });
      }
      scoreRows(t.data as Float32Array, labels, seqs.length * T, V, k, s0 * T, out);
      opts.progress?.({ phase: 'teacher eval', done: (s0 + seqs.length) * T, total: N, unit: 'tokens' });
    }
  } finally {
    await session.release().catch(() => undefined);
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    model,
    sha256,
    datasetSha256: dataset.sha256,
    vocabSize: V,
    seqLen: T,
    k,
    ...out,
    positions: N,
    seconds,
    tokensPerSecond: N / Math.max(seconds, 1e-9),
  };
}
