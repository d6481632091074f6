// ONNX export of a student under the teacher contract: input `input_ids` int64 [B, T] → output `logits`
// float32 [B, T, V], B and T dynamic (T ≤ contextLength). Llama graph: Gather embed, RMSNorm from
// Mul/ReduceMean/Add/Sqrt/Div, RoPE with cos/sin tables sliced to T, causal mask, grouped KV heads
// repeated with Expand, SwiGLU (or the MoE FFN of export-moe.ts), final RMSNorm, LM head (tied or not).
// Opset 17, plain ONNX ops only. With `inputs: 'optimum'` it writes Hugging Face Optimum's text-generation
// naming instead (see optimumInputs).
import { existsSync } from 'node:fs';
import { DistillError } from '../core/errors.js';
import { headDim, paramLayout, type ModelConfig } from '../core/model.js';
import { isMoeLayer } from '../core/moe.js';
import { loadCheckpoint } from '../engine/index.js';
import { OnnxGraph } from '../onnx/index.js';
import { moeFfn } from './export-moe.js';
import { writeFileAtomic } from '../store/index.js';

export const ONNX_OPSET = 17;

/** Transposes a row-major [rows, cols] matrix so MatMul(x, Wᵀ) can use a stored [in, out] initializer. */
function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c]!;
  return out;
}

/** cos/sin tables [contextLength, hd] for rotate-half RoPE (both halves share the angle), and R with x·R = rotate_half(x). */
function ropeTables(c: ModelConfig): { cos: Float32Array; sin: Float32Array; rot: Float32Array } {
  const hd = headDim(c);
  const half = hd / 2;
  const cos = new Float32Array(c.contextLength * hd);
  const sin = new Float32Array(c.contextLength * hd);
  for (let p = 0; p < c.contextLength; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * Math.pow(c.ropeTheta, (-2 * i) / hd);
      cos[p * hd + i] = cos[p * hd + i + half] = Math.cos(angle);
      sin[p * hd + i] = sin[p * hd + i + half] = Math.sin(angle);
    }
  }
  // rotate_half(x) = concat(-x[half:], x[:half]): out[j] = -x[j + half] for j < half, x[j - half] otherwise.
  const rot = new Float32Array(hd * hd);
  for (let j = 0; j < half; j++) {
    rot[(j + half) * hd + j] = -1;
    rot[j * hd + j + half] = 1;
  }
  return { cos, sin, rot };
}

/**
 * Which inputs the graph takes: `teacher` (the default) only input_ids; `optimum` the inputs and outputs of
 * a Hugging Face Optimum export for text generation with past (optimum/exporters/onnx/config.py,
 * TextDecoderOnnxConfig.inputs and TextDecoderWithPositionIdsOnnxConfig; base.py,
 * OnnxConfigWithPast.add_past_key_values): input_ids [batch_size, sequence_length], attention_mask
 * [batch_size, past_sequence_length + sequence_length], position_ids [batch_size, sequence_length],
 * past_key_values.N.key/value [batch_size, kv heads, past_sequence_length, head dim] → logits and
 * present.N.key/value [batch_size, kv heads, past_sequence_length + sequence_length, head dim].
 */
export type OnnxInputs = 'teacher' | 'optimum';

/** Builds the ONNX model bytes for a config and its flat parameters (canonical order). */
export function buildOnnxModel(
  config: ModelConfig,
  params: Float32Array,
  metadata: Record<string, string> = {},
  inputs: OnnxInputs = 'teacher',
): Uint8Array {
  const layout = paramLayout(config);
  const total = layout.reduce((n, s) => n + s.size, 0);
  if (params.length !== total) {
    throw new DistillError('E_MODEL', 'the parameters do not match the model config', {
      expected: `${total} floats`,
      found: String(params.length),
    });
  }
  // One protobuf message cannot exceed 2 GiB; the weights (plus transposed copies' overhead) must fit.
  if (total * 4 > 1.9 * 2 ** 30) {
    throw new DistillError('E_UNSUPPORTED', 'the model is too large for a single-file ONNX export', {
      expected: 'at most ~475M parameters',
      found: `${total} parameters`,
      hint: 'external-data ONNX export is not implemented',
    });
  }
  const w = new Map(
    layout.map((s) => [s.name, { shape: s.shape, data: params.subarray(s.offset, s.offset + s.size) }]),
  );
  const get = (name: string) => w.get(name)!;
  const { dModel: d, nHeads: h, nKvHeads: g, vocabSize: V } = config;
  const hd = headDim(config);
  const b = OnnxGraph.create({
    graphName: 'distillery_student',
    opset: ONNX_OPSET,
    producer: 'distillery',
    metadata: { 'distillery.config': JSON.stringify(config), ...metadata },
  });

  const optimum = inputs === 'optimum';
  const ids = b.input('input_ids', 'int64', optimum ? ['batch_size', 'sequence_length'] : ['batch', 'seq']);
  const T1 = b.op('Shape', [ids], { start: 1, end: 2 }); // [T] as a 1-element int64 tensor
  const zero1 = b.int64Tensor([1], [0], 'zero_1d');
  const axes0 = b.int64Tensor([1], [0], 'axes_0');
  const axes1 = b.int64Tensor([1], [1], 'axes_1');
  const eps = b.floatTensor([], new Float32Array([config.normEps]), 'norm_eps');
  const rope = ropeTables(config);
  const ropeTable = (which: 'cos' | 'sin') => b.floatTensor([config.contextLength, hd], rope[which], `rope_${which}`);
  let mask: string;
  let cos: string;
  let sin: string;
  if (optimum) {
    ({ mask, cos, sin } = optimumInputs(b, config, { T1, axes0, axes1, ropeTable }));
  } else {
    // Causal mask [T, T]: −1e9 where the key position is after the query position.
    const Tscalar = b.op('Squeeze', [T1, axes0]);
    const r = b.op('Range', [b.int64Tensor([], [0], 'zero_s'), Tscalar, b.int64Tensor([], [1], 'one_s')]);
    const future = b.op('Greater', [b.op('Unsqueeze', [r, axes0]), b.op('Unsqueeze', [r, axes1])]);
    mask = b.op('Where', [
      future,
      b.floatTensor([], new Float32Array([-1e9]), 'neg_big'),
      b.floatTensor([], new Float32Array([0]), 'zero_f'),
    ]);
    cos = b.op('Slice', [ropeTable('cos'), zero1, T1, axes0]);
    sin = b.op('Slice', [ropeTable('sin'), zero1, T1, axes0]);
  }
  const rot = b.floatTensor([hd, hd], rope.rot, 'rope_rotate_half');
  const scale = b.floatTensor([], new Float32Array([1 / Math.sqrt(hd)]), 'attn_scale');

  const rmsNorm = (x: string, weight: string): string => {
    const ms = b.op('ReduceMean', [b.op('Mul', [x, x])], { axes: [-1], keepdims: 1 });
    const normed = b.op('Div', [x, b.op('Sqrt', [b.op('Add', [ms, eps])])]);
    return b.op('Mul', [normed, b.floatTensor(get(weight).shape, get(weight).data, weight)]);
  };
  const linear = (x: string, weight: string): string => {
    const [out, inp] = get(weight).shape as [number, number];
    return b.op('MatMul', [x, b.floatTensor([inp, out], transpose(get(weight).data, out, inp), `${weight}.T`)]);
  };
  const heads = (x: string, n: number): string =>
    b.op('Transpose', [b.op('Reshape', [x, b.int64Tensor([4], [0, 0, n, hd], b.fresh('shape'))])], {
      perm: [0, 2, 1, 3],
    });
  const applyRope = (x: string): string =>
    b.op('Add', [b.op('Mul', [x, cos]), b.op('Mul', [b.op('MatMul', [x, rot]), sin])]);
  // [B, g, T, hd] → [B, h, T, hd]: query head i reads KV head floor(i / (h/g)).
  const repeatKv = (x: string): string => {
    if (g === h) return x;
    const expanded = b.op('Expand', [
      b.op('Unsqueeze', [x, b.int64Tensor([1], [2], b.fresh('axes'))]),
      b.int64Tensor([5], [1, 1, h / g, 1, 1], b.fresh('rep')),
    ]);
    return b.op('Reshape', [expanded, b.int64Tensor([4], [0, h, -1, hd], b.fresh('shape'))]);
  };

  let x = b.op('Gather', [b.floatTensor(get('embed').shape, get('embed').data, 'embed'), ids], { axis: 0 });
  for (let l = 0; l < config.nLayers; l++) {
    const p = `layers.${l}.`;
    const xn = rmsNorm(x, `${p}attn_norm`);
    const q = applyRope(heads(linear(xn, `${p}wq`), h));
    // With a past, this step's keys and values follow the cached ones and are the layer's present.
    const past = (kind: 'key' | 'value', x: string) => (optimum ? withPast(b, l, kind, x, g, hd) : x);
    const k = repeatKv(past('key', applyRope(heads(linear(xn, `${p}wk`), g))));
    const v = repeatKv(past('value', heads(linear(xn, `${p}wv`), g)));
    const scores = b.op('Add', [
      b.op('Mul', [b.op('MatMul', [q, b.op('Transpose', [k], { perm: [0, 1, 3, 2] })]), scale]),
      mask,
    ]);
    const att = b.op('MatMul', [b.op('Softmax', [scores], { axis: -1 }), v]);
    const merged = b.op('Reshape', [
      b.op('Transpose', [att], { perm: [0, 2, 1, 3] }),
      b.int64Tensor([3], [0, 0, d], b.fresh('shape')),
    ]);
    x = b.op('Add', [x, linear(merged, `${p}wo`)]);
    const xf = rmsNorm(x, `${p}ffn_norm`);
    if (isMoeLayer(l, config.moe)) {
      x = b.op('Add', [x, moeFfn(b, xf, p, config, { weight: get, transpose })]);
      continue;
    }
    const gate = linear(xf, `${p}w1`);
    const swiglu = b.op('Mul', [b.op('Mul', [gate, b.op('Sigmoid', [gate])]), linear(xf, `${p}w3`)]);
    x = b.op('Add', [x, linear(swiglu, `${p}w2`)]);
  }
  const xn = rmsNorm(x, 'norm');
  // Tied: transpose the shared embedding in-graph (ORT folds it once at load) instead of storing it twice.
  const head = config.tieEmbeddings
    ? b.op('Transpose', ['embed'], { perm: [1, 0] })
    : b.floatTensor([d, V], transpose(get('lm_head').data, V, d), 'lm_head.T');
  b.node('MatMul', [xn, head], {}, ['logits']);
  b.output('logits', 'float', optimum ? ['batch_size', 'sequence_length', V] : ['batch', 'seq', V]);
  return b.encode();
}

const PAST = 'past_sequence_length';
const TOTAL = 'past_sequence_length + sequence_length';

/**
 * Optimum's inputs besides input_ids and what the layers take from them: the additive mask [B, 1, T, P+T]
 * (causal over past and present keys, −1e9 where attention_mask is 0) and the RoPE rows of position_ids.
 */
function optimumInputs(
  b: OnnxGraph,
  config: ModelConfig,
  t: { T1: string; axes0: string; axes1: string; ropeTable: (which: 'cos' | 'sin') => string },
): { mask: string; cos: string; sin: string } {
  const hd = headDim(config);
  const attention = b.input('attention_mask', 'int64', ['batch_size', TOTAL]);
  const positions = b.input('position_ids', 'int64', ['batch_size', 'sequence_length']);
  for (let l = 0; l < config.nLayers; l++)
    for (const kind of ['key', 'value'])
      b.input(`past_key_values.${l}.${kind}`, 'float', ['batch_size', config.nKvHeads, PAST, hd]);
  const scalar = (x: string) => b.op('Squeeze', [x, t.axes0]);
  const P = scalar(b.op('Shape', ['past_key_values.0.key'], { start: 2, end: 3 }));
  const T = scalar(t.T1);
  const one = b.int64Tensor([], [1]);
  // Query i sits at P + i; key j may be seen when j ≤ P + i.
  const keys = b.op('Range', [b.int64Tensor([], [0]), b.op('Add', [P, T]), one]);
  const queries = b.op('Range', [P, b.op('Add', [P, T]), one]);
  const future = b.op('Greater', [b.op('Unsqueeze', [keys, t.axes0]), b.op('Unsqueeze', [queries, t.axes1])]);
  const negBig = b.floatTensor([], new Float32Array([-1e9]));
  const causal = b.op('Where', [future, negBig, b.floatTensor([], new Float32Array([0]))]);
  // attention_mask [B, P+T] → [B, 1, 1, P+T] of 0 (attend) or −1e9 (padding).
  const keep = b.op('Cast', [attention], { to: 1 });
  const padding = b.op('Mul', [b.op('Sub', [b.floatTensor([], new Float32Array([1])), keep]), negBig]);
  const mask = b.op('Add', [causal, b.op('Unsqueeze', [padding, b.int64Tensor([2], [1, 2])])]);
  // RoPE rows of the given positions, [B, 1, T, hd] so they broadcast over heads.
  const rows = (table: string) => b.op('Unsqueeze', [b.op('Gather', [table, positions], { axis: 0 }), t.axes1]);
  return { mask, cos: rows(t.ropeTable('cos')), sin: rows(t.ropeTable('sin')) };
}

/** Concat(past, new) along the sequence axis, written as present.<l>.<kind>. */
function withPast(b: OnnxGraph, l: number, kind: 'key' | 'value', x: string, g: number, hd: number): string {
  const present = `present.${l}.${kind}`;
  b.node('Concat', [`past_key_values.${l}.${kind}`, x], { axis: 2 }, [present]);
  b.output(present, 'float', ['batch_size', g, TOTAL, hd]);
  return present;
}

export interface OnnxExportResult {
  out: string;
  bytes: number;
  config: ModelConfig;
  parameters: number;
}

/**
 * Reads a checkpoint folder and writes its ONNX model to `out` (tmp + rename: never a partial file). An
 * existing `out` is replaced only with `force`.
 */
export function exportOnnx(opts: {
  checkpoint: string;
  out: string;
  inputs?: OnnxInputs;
  force?: boolean;
}): OnnxExportResult {
  if (!opts.force && existsSync(opts.out))
    throw new DistillError('E_USAGE', `${opts.out} already exists`, {
      subject: opts.out,
      field: 'out',
      hint: 'pass `force` to replace it, or choose another `out`',
    });
  const ck = loadCheckpoint(opts.checkpoint);
  const bytes = buildOnnxModel(ck.config, ck.params, { 'distillery.checkpoint': opts.checkpoint }, opts.inputs);
  writeFileAtomic(opts.out, bytes);
  return { out: opts.out, bytes: bytes.length, config: ck.config, parameters: ck.params.length };
}
