// Float64 building blocks of the reference engines (dense layers and the MoE FFN): the linear layer
// y = x · Wᵀ with W [out × inp] row-major at an offset of the flat parameters, and its backward.
import { add, at } from '../core/arrays.js';

type F64 = Float64Array;

/** y[N×out] = x[N×inp] · Wᵀ with W at offset wo of P, [out×inp] row-major. */
export function linear(x: F64, rows: number, inp: number, P: F64, wo: number, out: number): F64 {
  const y = new Float64Array(rows * out);
  for (let n = 0; n < rows; n++) {
    for (let o = 0; o < out; o++) {
      let s = 0;
      for (let i = 0; i < inp; i++) s += at(x, n * inp + i) * at(P, wo + o * inp + i);
      y[n * out + o] = s;
    }
  }
  return y;
}

/** Backward of linear: dx[N×inp] += dy · W, and dW (at offset wo of G) += dyᵀ · x. */
export function linearBack(
  dy: F64,
  x: F64,
  rows: number,
  inp: number,
  P: F64,
  G: F64,
  wo: number,
  out: number,
  dx: F64,
): void {
  for (let n = 0; n < rows; n++) {
    for (let o = 0; o < out; o++) {
      const g = at(dy, n * out + o);
      if (g === 0) continue;
      for (let i = 0; i < inp; i++) {
        add(dx, n * inp + i, g * at(P, wo + o * inp + i));
        add(G, wo + o * inp + i, g * at(x, n * inp + i));
      }
    }
  }
}
