// The MoE FFN of an exported student as plain ONNX ops (opset 17): router MatMul, affinities (+ selection bias),
// TopK, router weights; the shared SwiGLU over every token; then, per routed expert, its tokens found with
// NonZero, gathered and scaled by their weight, run through the expert, and added back with ScatterND(add).
// Shapes: xf [B, T, d] → [B, T, d]; N = B·T tokens, E experts, k active, F expert width. Same math as
// src/engine/moe/reference.ts (ties: TopK keeps the lower index first, as the engines do).
import type { ModelConfig } from '../core/model.js';
import type { OnnxGraph } from '../onnx/index.js';

export interface MoeExportTensors {
  /** A named [out, in] row-major tensor of the checkpoint, or one expert's slice of a 3-D expert tensor. */
  weight(name: string): { shape: number[]; data: Float32Array };
  /** Transposed copy of a row-major [rows, cols] matrix. */
  transpose(w: Float32Array, rows: number, cols: number): Float32Array;
}

export function moeFfn(b: OnnxGraph, xf: string, prefix: string, config: ModelConfig, t: MoeExportTensors): string {
  const moe = config.moe;
  if (!moe) throw new Error('moeFfn needs a moe block');
  const d = config.dModel,
    E = moe.experts,
    k = moe.activeExperts,
    F = moe.expertFfnDim,
    SF = moe.sharedExperts * F;
  const ax = (v: number[]) => b.int64Tensor([v.length], v, b.fresh('axes'));
  // [in, out] initializer for y = x · Wᵀ from W [out, in] starting at `offset` floats of `name`.
  const matT = (name: string, offset: number, out: number, inp: number, label: string) =>
    b.floatTensor(
      [inp, out],
      t.transpose(t.weight(name).data.subarray(offset, offset + out * inp), out, inp),
      `${prefix}${label}.T`,
    );
  const swiglu = (x: string, gateUp: string, down: string, width: number) => {
    const au = b.op('MatMul', [x, gateUp]);
    const a = b.op('Slice', [au, ax([0]), ax([width]), ax([-1])]);
    const u = b.op('Slice', [au, ax([width]), ax([2 * width]), ax([-1])]);
    return b.op('MatMul', [b.op('Mul', [b.op('Mul', [a, b.op('Sigmoid', [a])]), u]), down]);
  };

  const X = b.op('Reshape', [xf, b.int64Tensor([2], [-1, d], b.fresh('shape'))]); // [N, d]
  const logits = b.op('MatMul', [X, matT(`${prefix}router`, 0, E, d, 'router')]); // [N, E]
  const aff = moe.router === 'sigmoid' ? b.op('Sigmoid', [logits]) : b.op('Softmax', [logits], { axis: -1 });
  const key =
    moe.balance.kind === 'bias'
      ? b.op('Add', [aff, b.floatTensor([E], t.weight(`${prefix}router_bias`).data, `${prefix}router_bias`)])
      : aff;
  const [, idx] = b.node('TopK', [key, b.int64Tensor([1], [k], b.fresh('k'))], { axis: -1, largest: 1, sorted: 1 }, 2);
  if (idx === undefined) throw new Error('TopK made no indices');
  const chosen = b.op('GatherElements', [logits, idx], { axis: 1 }); // [N, k]
  const w = moe.router === 'sigmoid' ? b.op('Sigmoid', [chosen]) : b.op('Softmax', [chosen], { axis: -1 });

  // Shared experts: one SwiGLU of width S·F over every token (shared_w1, shared_w3 stacked as [a | u]).
  let out: string;
  if (SF > 0) {
    const w13 = new Float32Array(2 * SF * d);
    w13.set(t.weight(`${prefix}shared_w1`).data);
    w13.set(t.weight(`${prefix}shared_w3`).data, SF * d);
    const gateUp = b.floatTensor([d, 2 * SF], t.transpose(w13, 2 * SF, d), `${prefix}shared_w13.T`);
    out = swiglu(X, gateUp, matT(`${prefix}shared_w2`, 0, d, SF, 'shared_w2'), SF);
  } else {
    out = b.op('Mul', [X, b.floatScalar(0)]);
  }

  const zeroF = b.floatScalar(0);
  for (let e = 0; e < E; e++) {
    const hit = b.op('Equal', [idx, b.int64Tensor([], [e], b.fresh('expert'))]); // [N, k]
    const we = b.op('ReduceSum', [b.op('Where', [hit, w, zeroF]), ax([1])], { keepdims: 0 }); // [N]
    const any = b.op('ReduceMax', [b.op('Cast', [hit], { to: 1 })], { axes: [1], keepdims: 0 }); // [N] float
    const rows = b.op('Squeeze', [b.op('NonZero', [any]), ax([0])]); // [cnt] int64, ascending
    const xe = b.op('Mul', [
      b.op('Gather', [X, rows], { axis: 0 }),
      b.op('Unsqueeze', [b.op('Gather', [we, rows], { axis: 0 }), ax([1])]),
    ]);
    const gateUp = matT(`${prefix}experts_gate_up`, e * 2 * F * d, 2 * F, d, `experts_gate_up.${e}`);
    const down = matT(`${prefix}experts_down`, e * d * F, d, F, `experts_down.${e}`);
    const ye = swiglu(xe, gateUp, down, F);
    out = b.op('ScatterND', [out, b.op('Unsqueeze', [rows, ax([1])]), ye], { reduction: { string: 'add' } });
  }
  return b.op('Reshape', [out, b.op('Shape', [xf])]);
}
