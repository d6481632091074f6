// Small teachers built with our ONNX writer, under the teacher contract (input_ids int64 [B,T] →
// logits float [B,T,V]): a count-based n-gram teacher (the fixture) and a synthetic Gather+MatMul
// teacher of any V (benchmarks, large-vocabulary tests).
import { mulberry32 } from '../core/random.js';
import { ElemType, OnnxGraph } from '../onnx/index.js';

export interface NgramTeacherOptions {
  vocabSize: number;
  /** Token id placed before the first position (the previous token of position 0). */
  padId: number;
  /** Add-α smoothing of the counts. */
  alpha?: number;
  /** Weight of the skip-bigram term P(x₊₁ | x₋₁) against the bigram P(x₊₁ | x). */
  skipWeight?: number;
}

function logProbRows(counts: Float64Array, V: number, alpha: number, scale: number): Float32Array {
  const out = new Float32Array(V * V);
  for (let a = 0; a < V; a++) {
    const row = counts.subarray(a * V, (a + 1) * V);
    let sum = 0;
    for (const c of row) sum += c;
    const denom = sum + alpha * V;
    row.forEach((c, b) => (out[a * V + b] = scale * Math.log((c + alpha) / denom)));
  }
  return out;
}

/**
 * logits[b,t,:] = log P(· | x_t) + w · log P(· | x_{t−1}), both add-α smoothed counts over `stream`:
 * Gather from two V×V tables, the previous token obtained by Pad + Slice of input_ids.
 */
export function buildNgramTeacher(stream: ArrayLike<number>, opts: NgramTeacherOptions): Uint8Array {
  const V = opts.vocabSize;
  const alpha = opts.alpha ?? 0.01;
  const w = opts.skipWeight ?? 0.5;
  const bi = new Float64Array(V * V);
  const skip = new Float64Array(V * V);
  const at = (i: number) => stream[i] ?? 0;
  const count = (table: Float64Array, j: number) => (table[j] = (table[j] ?? 0) + 1);
  for (let i = 0; i + 1 < stream.length; i++) {
    count(bi, at(i) * V + at(i + 1));
    if (i >= 1) count(skip, at(i - 1) * V + at(i + 1));
  }
  const g = OnnxGraph.create({ opset: 17, producer: 'distillery ngram teacher', graphName: 'ngram_teacher' });
  g.input('input_ids', ElemType.INT64, ['batch', 'seq']);
  const biT = g.floatTensor([V, V], logProbRows(bi, V, alpha, 1), 'bigram_logp');
  const skT = g.floatTensor([V, V], logProbRows(skip, V, alpha, w), 'skip_logp_scaled');
  const cur = g.op('Gather', [biT, 'input_ids'], { axis: 0 });
  const padded = g.op('Pad', ['input_ids', g.int64Tensor([4], [0, 1, 0, 0]), g.int64Tensor([], [opts.padId])]);
  const prev = g.op('Slice', [padded, g.int64Tensor([1], [0]), g.int64Tensor([1], [-1]), g.int64Tensor([1], [1])]);
  const sk = g.op('Gather', [skT, prev], { axis: 0 });
  g.op('Add', [cur, sk], {}, 'logits');
  g.output('logits', ElemType.FLOAT, ['batch', 'seq', V]);
  return g.encode();
}

/** mulberry32 → uniform [−1, 1): deterministic weights without Math.random. */
function rng(seed: number): () => number {
  const u = mulberry32(seed);
  return () => u() * 2 - 1;
}

export interface SyntheticTeacherOptions {
  vocabSize: number;
  dim?: number;
  seed?: number;
  /** Scale of the output weights: larger → more peaked distributions. */
  sharpness?: number;
  /** Names of the contract tensors (tests use other names to make broken teachers). */
  inputName?: string;
  outputName?: string;
}

/** logits = Gather(E [V,d], input_ids) · W [d,V] + b: a random teacher whose cost scales with V like an LM head. */
export function buildSyntheticTeacher(opts: SyntheticTeacherOptions): Uint8Array {
  const V = opts.vocabSize;
  const d = opts.dim ?? 64;
  const r = rng(opts.seed ?? 1);
  const s = (opts.sharpness ?? 3) / Math.sqrt(d);
  const E = Float32Array.from({ length: V * d }, () => r());
  const W = Float32Array.from({ length: d * V }, () => r() * s);
  const b = Float32Array.from({ length: V }, () => r());
  const input = opts.inputName ?? 'input_ids';
  const output = opts.outputName ?? 'logits';
  const g = OnnxGraph.create({ opset: 17, producer: 'distillery synthetic teacher', graphName: 'synthetic_teacher' });
  g.input(input, ElemType.INT64, ['batch', 'seq']);
  const h = g.op('Gather', [g.floatTensor([V, d], E, 'embed'), input], { axis: 0 });
  g.op('Add', [g.op('MatMul', [h, g.floatTensor([d, V], W, 'lm_head')]), g.floatTensor([V], b, 'lm_bias')], {}, output);
  g.output(output, ElemType.FLOAT, ['batch', 'seq', V]);
  return g.encode();
}
