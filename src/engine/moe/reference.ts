// Float64 reference of one MoE FFN layer (src/core/moe.ts), forward and backward: router, top-k selection
// (with the balance bias), shared experts, routed SwiGLU experts, the balance statistics and the aux loss.
// Shapes: h [N×d] (the ffn_norm output), out [N×d]; E experts, k active, F expert width, S·F shared width.
import { add, at } from '../../core/arrays.js';
import type { MoeBalance, MoeConfig } from '../../core/moe.js';
import { linear, linearBack } from '../reference-ops.js';

type F64 = Float64Array;

/** Offsets (in floats) of one MoE layer's tensors in the flat parameter / gradient buffers. */
export interface MoeOffsets {
  router: number;
  routerBias?: number;
  sharedW1?: number;
  sharedW3?: number;
  sharedW2?: number;
  gateUp: number;
  down: number;
}

export interface MoeDims {
  d: number;
  E: number;
  k: number;
  F: number;
  /** Width of the shared SwiGLU (S·F; 0 without shared experts). */
  SF: number;
  router: 'sigmoid' | 'softmax';
  balance: MoeBalance;
}

export function moeDims(dModel: number, moe: MoeConfig): MoeDims {
  return {
    d: dModel,
    E: moe.experts,
    k: moe.activeExperts,
    F: moe.expertFfnDim,
    SF: moe.sharedExperts * moe.expertFfnDim,
    router: moe.router,
    balance: moe.balance,
  };
}

/** Per-layer routing statistics of one forward (the metrics of the training log). */
export interface MoeLayerStats {
  /** Routing slots per expert (each token fills k slots). */
  load: number[];
  tokens: number;
  /** Mean over tokens of the entropy (nats) of the normalized affinities p. */
  entropy: number;
  /** E · Σ_e f_e · P_e: 1 at perfect balance, E when one expert takes every token and all the affinity. */
  balance: number;
  /** coef · balance for the aux-loss kind, 0 for the bias kind: the loss added to training. */
  auxLoss: number;
}

export interface MoeSaved {
  N: number;
  h: F64;
  logits: F64;
  /** Normalized affinities p [N×E] (the distribution of the balance loss and the entropy). */
  p: F64;
  /** Chosen experts [N×k], by descending selection key (ties: lower index first). */
  sel: Int32Array;
  /** Router weights of the chosen experts [N×k]. */
  w: F64;
  /** Shared expert activations [N×SF] (gate pre-activation, up) and their product. */
  sa: F64;
  su: F64;
  sm: F64;
  /** Per routing slot (n, j): the expert input x = w·h [N·k×d], gate/up pre-activations [N·k×F], product. */
  x: F64;
  a: F64;
  u: F64;
  m: F64;
  /** f_e, the share of slots per expert. */
  f: F64;
}

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));
const silu = (z: number): number => z * sigmoid(z);

/**
 * The experts of one token: the k largest selection keys `affinity + bias`, ties to the lower index.
 * `affinity` is σ(l) (sigmoid router, as DeepSeek-V3) or softmax over all logits (softmax router); without the
 * bias kind the choice is the top-k of the logits either way.
 */
export function topK(key: ArrayLike<number>, E: number, k: number): number[] {
  const chosen: number[] = [];
  for (let j = 0; j < k; j++) {
    let best = -1;
    for (let e = 0; e < E; e++) {
      if (chosen.includes(e)) continue;
      if (best < 0 || at(key, e) > at(key, best)) best = e;
    }
    chosen.push(best);
  }
  return chosen;
}

/** Routing decisions for a forward: logits, normalized affinities, chosen experts and their weights. */
export function route64(
  dims: MoeDims,
  P: F64,
  off: MoeOffsets,
  h: F64,
  N: number,
): { logits: F64; p: F64; sel: Int32Array; w: F64; keys: F64 } {
  const { d, E, k } = dims;
  const logits = new Float64Array(N * E),
    p = new Float64Array(N * E),
    keys = new Float64Array(N * E);
  const sel = new Int32Array(N * k),
    w = new Float64Array(N * k);
  for (let n = 0; n < N; n++) {
    for (let e = 0; e < E; e++) {
      let z = 0;
      for (let i = 0; i < d; i++) z += at(h, n * d + i) * at(P, off.router + e * d + i);
      logits[n * E + e] = z;
    }
    const row = logits.subarray(n * E, n * E + E);
    const aff = new Float64Array(E);
    if (dims.router === 'sigmoid') {
      let z = 0;
      for (let e = 0; e < E; e++) z += aff[e] = sigmoid(at(row, e));
      for (let e = 0; e < E; e++) p[n * E + e] = at(aff, e) / z;
    } else {
      const mx = Math.max(...row);
      let z = 0;
      for (let e = 0; e < E; e++) z += aff[e] = Math.exp(at(row, e) - mx);
      for (let e = 0; e < E; e++) p[n * E + e] = aff[e] = at(aff, e) / z;
    }
    for (let e = 0; e < E; e++)
      keys[n * E + e] = at(aff, e) + (off.routerBias !== undefined ? at(P, off.routerBias + e) : 0);
    const chosen = topK(keys.subarray(n * E, n * E + E), E, k);
    for (let j = 0; j < k; j++) sel[n * k + j] = at(chosen, j);
    if (dims.router === 'sigmoid') {
      for (let j = 0; j < k; j++) w[n * k + j] = sigmoid(at(row, at(chosen, j)));
    } else {
      const mx = Math.max(...chosen.map((e) => at(row, e)));
      let z = 0;
      for (let j = 0; j < k; j++) z += w[n * k + j] = Math.exp(at(row, at(chosen, j)) - mx);
      for (let j = 0; j < k; j++) w[n * k + j] = at(w, n * k + j) / z;
    }
  }
  return { logits, p, sel, w, keys };
}

/** One MoE FFN forward: out = shared(h) + Σ_j expert_{sel_j}(w_j · h). */
export function moeForward64(
  dims: MoeDims,
  P: F64,
  off: MoeOffsets,
  h: F64,
  N: number,
): { out: F64; saved: MoeSaved; stats: MoeLayerStats } {
  const { d, E, k, F, SF } = dims;
  const { logits, p, sel, w } = route64(dims, P, off, h, N);
  const out = new Float64Array(N * d);
  let sa: F64 = new Float64Array(0),
    su: F64 = new Float64Array(0),
    sm: F64 = new Float64Array(0);
  if (SF > 0 && off.sharedW1 !== undefined && off.sharedW3 !== undefined && off.sharedW2 !== undefined) {
    sa = linear(h, N, d, P, off.sharedW1, SF);
    su = linear(h, N, d, P, off.sharedW3, SF);
    sm = new Float64Array(N * SF);
    for (let i = 0; i < sm.length; i++) sm[i] = silu(at(sa, i)) * at(su, i);
    out.set(linear(sm, N, SF, P, off.sharedW2, d));
  }
  const slots = N * k;
  const x = new Float64Array(slots * d),
    a = new Float64Array(slots * F),
    u = new Float64Array(slots * F),
    m = new Float64Array(slots * F);
  for (let s = 0; s < slots; s++) {
    const n = Math.floor(s / k),
      e = at(sel, s);
    for (let i = 0; i < d; i++) x[s * d + i] = at(w, s) * at(h, n * d + i);
    const gu = off.gateUp + e * 2 * F * d;
    for (let o = 0; o < F; o++) {
      let za = 0,
        zu = 0;
      for (let i = 0; i < d; i++) {
        za += at(x, s * d + i) * at(P, gu + o * d + i);
        zu += at(x, s * d + i) * at(P, gu + (F + o) * d + i);
      }
      a[s * F + o] = za;
      u[s * F + o] = zu;
      m[s * F + o] = silu(za) * zu;
    }
    const dn = off.down + e * d * F;
    for (let o = 0; o < d; o++) {
      let z = 0;
      for (let i = 0; i < F; i++) z += at(m, s * F + i) * at(P, dn + o * F + i);
      add(out, n * d + o, z);
    }
  }
  const load = new Array<number>(E).fill(0);
  for (let s = 0; s < slots; s++) load[at(sel, s)] = at(load, at(sel, s)) + 1;
  const f = Float64Array.from(load, (c) => c / slots);
  let balance = 0,
    entropy = 0;
  for (let e = 0; e < E; e++) {
    let pe = 0;
    for (let n = 0; n < N; n++) pe += at(p, n * E + e);
    balance += at(f, e) * (pe / N);
  }
  balance *= E;
  for (let i = 0; i < N * E; i++) if (at(p, i) > 0) entropy -= at(p, i) * Math.log(at(p, i));
  entropy /= N;
  const auxLoss = dims.balance.kind === 'aux-loss' ? dims.balance.coef * balance : 0;
  return {
    out,
    saved: { N, h, logits, p, sel, w, sa, su, sm, x, a, u, m, f },
    stats: { load, tokens: N, entropy, balance, auxLoss },
  };
}

/**
 * Backward of Σ dOut ⊙ out + auxWeight · auxLoss: adds the parameter gradients into G and the input gradient
 * into dh [N×d]. The selection bias gets no gradient (the choice is piecewise constant in it).
 */
export function moeBackward64(
  dims: MoeDims,
  P: F64,
  off: MoeOffsets,
  s: MoeSaved,
  dOut: F64,
  G: F64,
  dh: F64,
  auxWeight = 1,
): void {
  const { d, E, k, F, SF } = dims;
  const { N, h } = s;
  if (SF > 0 && off.sharedW1 !== undefined && off.sharedW3 !== undefined && off.sharedW2 !== undefined) {
    const dm = new Float64Array(N * SF);
    linearBack(dOut, s.sm, N, SF, P, G, off.sharedW2, d, dm);
    const da = new Float64Array(N * SF),
      du = new Float64Array(N * SF);
    for (let i = 0; i < dm.length; i++) {
      const z = at(s.sa, i),
        sg = sigmoid(z);
      du[i] = at(dm, i) * z * sg;
      da[i] = at(dm, i) * at(s.su, i) * sg * (1 + z * (1 - sg));
    }
    linearBack(da, h, N, d, P, G, off.sharedW1, SF, dh);
    linearBack(du, h, N, d, P, G, off.sharedW3, SF, dh);
  }
  const dLogits = new Float64Array(N * E);
  const dw = new Float64Array(N * k);
  for (let slot = 0; slot < N * k; slot++) {
    const n = Math.floor(slot / k),
      e = at(s.sel, slot);
    const gu = off.gateUp + e * 2 * F * d,
      dn = off.down + e * d * F;
    const dm = new Float64Array(F);
    for (let o = 0; o < d; o++) {
      const g = at(dOut, n * d + o);
      for (let i = 0; i < F; i++) {
        add(dm, i, g * at(P, dn + o * F + i));
        add(G, dn + o * F + i, g * at(s.m, slot * F + i));
      }
    }
    const dx = new Float64Array(d);
    for (let o = 0; o < F; o++) {
      const z = at(s.a, slot * F + o),
        sg = sigmoid(z);
      const du = at(dm, o) * z * sg;
      const da = at(dm, o) * at(s.u, slot * F + o) * sg * (1 + z * (1 - sg));
      for (let i = 0; i < d; i++) {
        add(dx, i, da * at(P, gu + o * d + i) + du * at(P, gu + (F + o) * d + i));
        add(G, gu + o * d + i, da * at(s.x, slot * d + i));
        add(G, gu + (F + o) * d + i, du * at(s.x, slot * d + i));
      }
    }
    // x = w · h: the weight gets dx·h, the input w·dx.
    let g = 0;
    for (let i = 0; i < d; i++) {
      g += at(dx, i) * at(h, n * d + i);
      add(dh, n * d + i, at(s.w, slot) * at(dx, i));
    }
    dw[slot] = g;
  }
  for (let n = 0; n < N; n++) {
    if (dims.router === 'sigmoid') {
      for (let j = 0; j < k; j++) {
        const wj = at(s.w, n * k + j);
        add(dLogits, n * E + at(s.sel, n * k + j), at(dw, n * k + j) * wj * (1 - wj));
      }
    } else {
      let dot = 0;
      for (let j = 0; j < k; j++) dot += at(s.w, n * k + j) * at(dw, n * k + j);
      for (let j = 0; j < k; j++)
        add(dLogits, n * E + at(s.sel, n * k + j), at(s.w, n * k + j) * (at(dw, n * k + j) - dot));
    }
  }
  if (dims.balance.kind === 'aux-loss' && dims.balance.coef !== 0 && auxWeight !== 0) {
    // L = coef · E · Σ_e f_e · (1/N) Σ_n p_ne, f constant: ∂L/∂p_ne = coef · E · f_e / N.
    const scale = (auxWeight * dims.balance.coef * E) / N;
    for (let n = 0; n < N; n++) {
      const pr = s.p.subarray(n * E, n * E + E);
      let dot = 0;
      for (let e = 0; e < E; e++) dot += at(pr, e) * scale * at(s.f, e);
      if (dims.router === 'softmax') {
        for (let e = 0; e < E; e++) add(dLogits, n * E + e, at(pr, e) * (scale * at(s.f, e) - dot));
      } else {
        // p_e = σ_e / Z: ∂L/∂σ_j = (∂L/∂p_j − Σ_e p_e ∂L/∂p_e) / Z, then σ' = σ(1 − σ).
        let z = 0;
        for (let e = 0; e < E; e++) z += sigmoid(at(s.logits, n * E + e));
        for (let e = 0; e < E; e++) {
          const sg = sigmoid(at(s.logits, n * E + e));
          add(dLogits, n * E + e, ((scale * at(s.f, e) - dot) / z) * sg * (1 - sg));
        }
      }
    }
  }
  linearBack(dLogits, h, N, d, P, G, off.router, E, dh);
}
