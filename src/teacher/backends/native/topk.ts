// Per-position top-k of log-softmax(logits / T) over the full vocabulary, as the ONNX backend's appended graph
// computes it (Div → LogSoftmax → TopK sorted, ties to the lower id): ids and log-probs by descending probability,
// and the log of the mass outside the top k (−inf when none), and optionally each row's log-prob of a given id
// (the next token: on-policy token-rkl). Log-sum-exp in float64.
import { at } from '../../../core/arrays.js';

export interface TopKRows {
  ids: Int32Array;
  logp: Float32Array;
  tail: Float32Array;
  /** [rows]: log-prob of next[r] (NaN where next[r] is −1), when `next` is given. */
  target?: Float32Array;
}

/** logits [rows × V] → ids, logp [rows × k], tail [rows]; with `next` [rows] (ids, −1 = none) also target [rows]. */
export function topKRows(
  logits: Float32Array,
  rows: number,
  V: number,
  k: number,
  temperature: number,
  next?: ArrayLike<number>,
): TopKRows {
  const ids = new Int32Array(rows * k);
  const logp = new Float32Array(rows * k);
  const tail = new Float32Array(rows);
  const target = next ? new Float32Array(rows) : undefined;
  const inv = 1 / temperature;
  const best = new Int32Array(k);
  const z = new Float64Array(V);
  const inTop = new Uint8Array(V);
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * V, (r + 1) * V);
    let mx = -Infinity;
    for (let v = 0; v < V; v++) mx = Math.max(mx, (z[v] = Math.fround(at(row, v) * inv)));
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(at(z, v) - mx);
    const lse = mx + Math.log(sum);
    if (target && next) {
      const x = at(next, r);
      target[r] = x >= 0 && x < V ? at(z, x) - lse : Number.NaN;
    }
    // Insertion into a sorted list of k: most ids fail the first comparison, so this is O(V) per row in practice.
    let n = 0;
    for (let v = 0; v < V; v++) {
      const x = at(z, v);
      if (n === k && x <= at(z, at(best, k - 1))) continue;
      let i = n < k ? n++ : k - 1;
      while (i > 0 && at(z, at(best, i - 1)) < x) {
        best[i] = at(best, i - 1);
        i--;
      }
      best[i] = v;
    }
    for (let j = 0; j < k; j++) {
      const v = at(best, j);
      ids[r * k + j] = v;
      logp[r * k + j] = at(z, v) - lse;
      inTop[v] = 1;
    }
    // The mass outside, summed directly (1 − Σ top loses its digits when the top k hold almost everything).
    let rest = 0;
    for (let v = 0; v < V; v++) if (!inTop[v]) rest += Math.exp(at(z, v) - lse);
    for (let j = 0; j < k; j++) inTop[at(best, j)] = 0;
    tail[r] = rest > 0 ? Math.log(rest) : -Infinity;
  }
  return { ids, logp, tail, ...(target ? { target } : {}) };
}
