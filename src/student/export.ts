// ONNX export of a student under the teacher contract: input `input_ids` int64 [B, T] → output `logits`
// float32 [B, T, V], B and T dynamic (T ≤ contextLength). Llama graph: Gather embed, RMSNorm from
// Mul/ReduceMean/Add/Sqrt/Div, RoPE with cos/sin tables sliced to T, causal mask, grouped KV heads
// repeated with Expand, SwiGLU, final RMSNorm, LM head (tied or not). Opset 17, plain ONNX ops only.
import { writeFileSync, renameSync } from 'node:fs';
import { DistillError } from '../core/errors.js';
import { headDim, paramLayout, type ModelConfig } from '../core/model.js';
import { loadCheckpoint } from '../engine/index.js';
import { OnnxGraph } from '../onnx/index.js';

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

/** Builds the ONNX model bytes for a config and its flat parameters (canonical order). */
export function buildOnnxModel(
  config: ModelConfig,
  params: Float32Array,
  metadata: Record<string, string> = {},
): Uint8Array {
  const layout = paramLayout(config);
  const total = layout.reduce((n, s) => n + s.size, 0);
  if (params.length !== total) {
    throw new DistillError('E_MODEL', 'the parameters do not match the model config', {
      expected: `${total} floats`,
      found: String(params.length),
    });
  }
  if (config.moe) {
    throw new DistillError('E_UNSUPPORTED', 'ONNX export of mixture-of-experts models is not implemented yet', {
      found: `a moe block (${config.moe.experts} experts)`,
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

  const ids = b.input('input_ids', 'int64', ['batch', 'seq']);
  const T1 = b.op('Shape', [ids], { start: 1, end: 2 }); // [T] as a 1-element int64 tensor
  const zero1 = b.int64Tensor([1], [0], 'zero_1d');
  const axes0 = b.int64Tensor([1], [0], 'axes_0');
  const axes1 = b.int64Tensor([1], [1], 'axes_1');
  const eps = b.floatTensor([], new Float32Array([config.normEps]), 'norm_eps');

  // Causal mask [T, T]: −1e9 where the key position is after the query position.
  const Tscalar = b.op('Squeeze', [T1, axes0]);
  const r = b.op('Range', [b.int64Tensor([], [0], 'zero_s'), Tscalar, b.int64Tensor([], [1], 'one_s')]);
  const future = b.op('Greater', [b.op('Unsqueeze', [r, axes0]), b.op('Unsqueeze', [r, axes1])]);
  const mask = b.op('Where', [
    future,
    b.floatTensor([], new Float32Array([-1e9]), 'neg_big'),
    b.floatTensor([], new Float32Array([0]), 'zero_f'),
  ]);

  const rope = ropeTables(config);
  const cos = b.op('Slice', [b.floatTensor([config.contextLength, hd], rope.cos, 'rope_cos'), zero1, T1, axes0]);
  const sin = b.op('Slice', [b.floatTensor([config.contextLength, hd], rope.sin, 'rope_sin'), zero1, T1, axes0]);
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
    const k = repeatKv(applyRope(heads(linear(xn, `${p}wk`), g)));
    const v = repeatKv(heads(linear(xn, `${p}wv`), g));
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
  b.output('logits', 'float', ['batch', 'seq', V]);
  return b.encode();
}

export interface OnnxExportResult {
  out: string;
  bytes: number;
  config: ModelConfig;
  parameters: number;
}

/** Reads a checkpoint folder and writes its ONNX model to `out` (tmp + rename: never a partial file). */
export function exportOnnx(opts: { checkpoint: string; out: string }): OnnxExportResult {
  const ck = loadCheckpoint(opts.checkpoint);
  const bytes = buildOnnxModel(ck.config, ck.params, { 'distillery.checkpoint': opts.checkpoint });
  const tmp = `${opts.out}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, opts.out);
  } catch (err) {
    throw new DistillError('E_IO', `could not write ${opts.out}`, {
      subject: opts.out,
      found: (err as Error).message,
      cause: err,
    });
  }
  return { out: opts.out, bytes: bytes.length, config: ck.config, parameters: ck.params.length };
}
