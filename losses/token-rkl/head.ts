// tokenRklHead: the token-rkl loss through the LM head, for the trainer's on-policy steps. hidden [N×d] · weightᵀ
// [d×V] → logits of the counted rows only (label ≠ −100, the generated positions), tokenReverseKl per chunk of
// rows, then dHidden [N×d] and dWeight [V×d] (accumulated). 'cpu' takes the logits and both gradients with the
// addon's sgemm in float32; 'reference' does all of it in float64 (tests).
import { add, at } from '../../src/core/arrays.js';
import { DistillError } from '../../src/core/errors.js';
import { nativeFn, type Sgemm } from '../../src/native/loader.js';
import { tokenReverseKl } from './index.js';

export interface TokenRklHeadInput {
  /** N × d, row-major (the final-norm hidden states). */
  hidden: Float32Array;
  /** V × d, row-major: logits = hidden · weightᵀ. */
  weight: Float32Array;
  n: number;
  dModel: number;
  vocabSize: number;
  /** [N]: the token the student sampled after each position, −100 where the position is not a generated one. */
  labels: Int32Array;
  /** [N]: the teacher's log-prob of each row's label (read where the label is not −100). */
  teacherLogp: Float32Array;
  /** [N]: the teacher's most likely id per row, for the agreement metric (optional). */
  teacherTop1?: ArrayLike<number>;
  /** q = softmax(logits / temperature): the distribution the tokens were drawn from. */
  temperature: number;
  /** Scales the gradients (the soft weight times the micro-batch share). */
  weightScale: number;
  /** V × d; the weight gradient is ACCUMULATED into it when given. */
  gradWeight?: Float32Array;
  backend?: 'reference' | 'cpu';
  /** Rows per chunk of logits; default keeps a chunk near 64 MiB of float64. */
  chunkSize?: number;
}

export interface TokenRklHeadResult {
  /** Mean over counted rows of log q(x) − log p(x): the estimate of the per-token KL(student‖teacher). */
  estimate: number;
  /** Share of counted rows where the student's argmax is the teacher's top-1 (0 without teacherTop1). */
  agreement: number;
  rows: number;
  gradHidden: Float32Array;
  gradWeight: Float32Array;
}

const CHUNK_BYTES = 64 * 1024 * 1024;
let sgemm: Sgemm | undefined;

export function tokenRklHead(input: TokenRklHeadInput): TokenRklHeadResult {
  const { n, dModel: d, vocabSize: V, hidden, weight, labels, teacherLogp } = input;
  if (
    hidden.length !== n * d ||
    weight.length !== V * d ||
    labels.length !== n ||
    teacherLogp.length !== n ||
    (input.gradWeight !== undefined && input.gradWeight.length !== V * d)
  ) {
    throw new DistillError('E_USAGE', 'tokenRklHead: the inputs have the wrong shape', {
      expected: `hidden N × d, weight and gradWeight V × d, labels and teacherLogp N (N = ${n}, d = ${d}, V = ${V})`,
      found: `${hidden.length} hidden, ${weight.length} weight, ${labels.length} labels, ${teacherLogp.length} teacher log-probs`,
    });
  }
  const gradWeight = input.gradWeight ?? new Float32Array(V * d);
  const gradHidden = new Float32Array(n * d);
  const counted: number[] = [];
  for (let r = 0; r < n; r++) if (at(labels, r) !== -100) counted.push(r);
  const total = counted.length;
  const chunk = input.chunkSize ?? Math.max(1, Math.floor(CHUNK_BYTES / (8 * V)));
  let estSum = 0,
    agree = 0;
  for (let c0 = 0; c0 < total; c0 += chunk) {
    const rows = counted.slice(c0, c0 + chunk);
    const m = rows.length;
    const h = new Float32Array(m * d);
    rows.forEach((r, i) => h.set(hidden.subarray(r * d, (r + 1) * d), i * d));
    const logits = input.backend === 'reference' ? logits64(h, weight, m, d, V) : logits32(h, weight, m, d, V);
    const res = tokenReverseKl({
      logits,
      vocabSize: V,
      tokens: rows.map((r) => at(labels, r)),
      teacherLogp: rows.map((r) => at(teacherLogp, r)),
      temperature: input.temperature,
    });
    estSum += res.estimate * m;
    // tokenReverseKl averages over this chunk's m rows; the loss averages over all counted rows.
    const scale = (input.weightScale * m) / total;
    if (input.teacherTop1) agree += agreements(logits, rows, V, input.teacherTop1);
    backward(
      { grad: res.grad, scale, h, rows },
      { w: weight, d, V, gradHidden, gradWeight },
      input.backend === 'reference',
    );
  }
  return {
    estimate: total ? estSum / total : 0,
    agreement: total && input.teacherTop1 ? agree / total : 0,
    rows: total,
    gradHidden,
    gradWeight,
  };
}

function logits32(h: Float32Array, w: Float32Array, m: number, d: number, V: number): Float32Array {
  const out = new Float32Array(m * V);
  sgemm ??= nativeFn<Sgemm>('sgemm');
  sgemm(0, 1, m, V, d, 1, h, d, w, d, 0, out, V);
  return out;
}

function logits64(h: Float32Array, w: Float32Array, m: number, d: number, V: number): Float64Array {
  const out = new Float64Array(m * V);
  for (let r = 0; r < m; r++)
    for (let c = 0; c < V; c++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += at(h, r * d + j) * at(w, c * d + j);
      out[r * V + c] = s;
    }
  return out;
}

/** Rows whose student argmax (ties to the lower id) is the teacher's top-1. */
function agreements(logits: ArrayLike<number>, rows: number[], V: number, top1: ArrayLike<number>): number {
  let n = 0;
  rows.forEach((r, i) => {
    let best = 0;
    for (let v = 1; v < V; v++) if (at(logits, i * V + v) > at(logits, i * V + best)) best = v;
    if (best === at(top1, r)) n += 1;
  });
  return n;
}

/** One chunk's gradient w.r.t. its logits [m×V] and what the head needs to carry it to hidden and weight. */
interface ChunkGrad {
  grad: Float64Array;
  scale: number;
  /** The chunk's hidden rows [m×d] and their row indices in the batch. */
  h: Float32Array;
  rows: number[];
}

interface Head {
  w: Float32Array;
  d: number;
  V: number;
  gradHidden: Float32Array;
  gradWeight: Float32Array;
}

/**
 * dz = scale · grad; dHidden rows = dz · W; dW += dzᵀ · h. float32 with sgemm, or float64 loops (the reference,
 * accumulated into the float32 outputs once per element).
 */
function backward(c: ChunkGrad, o: Head, float64: boolean): void {
  const { grad, scale, h, rows } = c;
  const { w, d, V, gradHidden, gradWeight } = o;
  const m = rows.length;
  if (!float64) {
    const dz = new Float32Array(m * V);
    for (let i = 0; i < m * V; i++) dz[i] = at(grad, i) * scale;
    const gh = new Float32Array(m * d);
    sgemm ??= nativeFn<Sgemm>('sgemm');
    sgemm(0, 0, m, d, V, 1, dz, V, w, d, 0, gh, d);
    sgemm(1, 0, V, d, m, 1, dz, V, h, d, 1, gradWeight, d);
    rows.forEach((r, i) => gradHidden.set(gh.subarray(i * d, (i + 1) * d), r * d));
    return;
  }
  rows.forEach((r, i) => {
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let v = 0; v < V; v++) s += at(grad, i * V + v) * scale * at(w, v * d + j);
      gradHidden[r * d + j] = s;
    }
  });
  for (let v = 0; v < V; v++)
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += at(grad, i * V + v) * scale * at(h, i * d + j);
      if (s !== 0) add(gradWeight, v * d + j, s);
    }
}
