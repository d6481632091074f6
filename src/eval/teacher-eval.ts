// The teacher's side of a held-out evaluation: runs an ONNX teacher (input_ids int64 [B, T] → logits
// float [B, T, V]) over every sequence of a token dataset and keeps, per position (N = sequences·T):
// log p(label) [N], argmax [N] and the top-k ids/log-probs [N·k] (log-softmax over the full vocabulary).
import { readFileSync, existsSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { DistillError } from '../core/errors.js';
import type { ProgressFn } from '../core/types.js';
import { assembleTokens, type TokenDatasetLike } from '../data/sequences.js';
import { checkTeacherContract, createSession, decodeModel, int64Ids, LOGITS_NAME } from '../teacher/backends/index.js';

export interface TeacherHeldOut {
  /** The model file it came from. */
  model: string;
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
    const x = z[o + v]!;
    if (filled === k && x <= vals[k - 1]!) continue;
    let j = filled < k ? filled++ : k - 1;
    while (j > 0 && vals[j - 1]! < x) {
      vals[j] = vals[j - 1]!;
      ids[j] = ids[j - 1]!;
      j--;
    }
    vals[j] = x;
    ids[j] = v;
  }
}

export async function teacherHeldOut(
  model: string,
  dataset: TokenDatasetLike,
  opts: TeacherHeldOutOptions,
): Promise<TeacherHeldOut> {
  if (!existsSync(model))
    throw new DistillError('E_NOT_FOUND', `teacher model ${model} not found`, {
      subject: model,
      hint: 'pass an ONNX file under the teacher contract (input_ids → logits)',
    });
  const bytes = readFileSync(model);
  const contract = checkTeacherContract(decodeModel(bytes, model), model);
  const V = dataset.vocabSize;
  if (contract.vocabSize !== null && contract.vocabSize !== V) {
    throw new DistillError('E_CONFIG', `teacher ${model} has another vocabulary than the token dataset`, {
      expected: `V = ${V}`,
      found: `V = ${contract.vocabSize}`,
      subject: model,
    });
  }
  const k = opts.k;
  if (!Number.isInteger(k) || k < 1 || k > V)
    throw new DistillError('E_USAGE', 'invalid top-k for the teacher support', {
      expected: `an integer 1 ≤ k ≤ ${V}`,
      found: String(k),
    });
  const session = await createSession(bytes, model, {
    device: { kind: 'cpu' },
    ...(opts.threads ? { threads: opts.threads } : {}),
  });
  const T = dataset.seqLen;
  const S = dataset.numSequences;
  const N = S * T;
  const labelLogp = new Float64Array(N);
  const top1 = new Int32Array(N);
  const ids = new Int32Array(N * k);
  const logp = new Float32Array(N * k);
  const rowIds = new Int32Array(k);
  const rowVals = new Float64Array(k);
  const B = opts.batchSize ?? 16;
  const started = performance.now();
  try {
    for (let s0 = 0; s0 < S; s0 += B) {
      const seqs = Array.from({ length: Math.min(B, S - s0) }, (_, i) => s0 + i);
      const { tokens, labels } = assembleTokens(dataset, seqs);
      const out = await session.run({ input_ids: new ort.Tensor('int64', int64Ids(tokens), [seqs.length, T]) });
      const t = out[LOGITS_NAME]!;
      if (t.dims.length !== 3 || Number(t.dims[2]) !== V) {
        throw new DistillError('E_MODEL', `teacher ${model} returned logits of the wrong shape`, {
          expected: `[${seqs.length}, ${T}, ${V}]`,
          found: `[${t.dims.join(', ')}]`,
          subject: model,
        });
      }
      const z = t.data as Float32Array;
      for (let r = 0; r < seqs.length * T; r++) {
        const o = r * V;
        let m = -Infinity;
        for (let v = 0; v < V; v++) if (z[o + v]! > m) m = z[o + v]!;
        let sum = 0;
        for (let v = 0; v < V; v++) sum += Math.exp(z[o + v]! - m);
        const lse = m + Math.log(sum);
        const n = s0 * T + r;
        const y = labels[r]!;
        labelLogp[n] = y >= 0 && y < V ? z[o + y]! - lse : NaN;
        topK(z, o, V, k, rowIds, rowVals);
        top1[n] = rowIds[0]!;
        for (let j = 0; j < k; j++) {
          ids[n * k + j] = rowIds[j]!;
          logp[n * k + j] = rowVals[j]! - lse;
        }
      }
      opts.progress?.({ phase: 'teacher eval', done: (s0 + seqs.length) * T, total: N, unit: 'tokens' });
    }
  } finally {
    await session.release().catch(() => undefined);
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    model,
    datasetSha256: (dataset as { sha256: string }).sha256,
    vocabSize: V,
    seqLen: T,
    k,
    labelLogp,
    top1,
    ids,
    logp,
    positions: N,
    seconds,
    tokensPerSecond: N / Math.max(seconds, 1e-9),
  };
}
