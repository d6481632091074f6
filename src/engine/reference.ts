// Float64 reference engine: the Llama-style decoder of src/core/model.ts written plainly, forward to the
// final-norm hidden states [N×d] and backward from dHidden to every parameter. Obviously right, slow.
// MoE layers run the float64 MoE FFN of ./moe/reference.ts.
import { add, at } from '../core/arrays.js';
import { invariant } from '../core/errors.js';
import { headDim, paramLayout, parameterCount, type ModelConfig, type TensorSlot } from '../core/model.js';
import { isMoeLayer } from '../core/moe.js';
import type { ModelEngine } from './api.js';
import { moeOffsets } from './moe/index.js';
import { moeBackward64, moeDims, moeForward64, type MoeLayerStats, type MoeSaved } from './moe/reference.js';
import { ReferenceDecoder } from './reference-decode.js';
import { linear, linearBack } from './reference-ops.js';
import { checkBackward, checkDecode, checkForward, checkParams, checkPrefill } from './validate.js';

type F64 = Float64Array;

interface LayerCache {
  xIn: F64;
  r1: F64;
  h1: F64;
  q: F64;
  k: F64;
  v: F64;
  probs: F64;
  att: F64;
  xMid: F64;
  r2: F64;
  h2: F64;
  a: F64;
  u: F64;
  m: F64;
  /** MoE layers: the MoE FFN's saved state (a, u, m are then empty). */
  moe?: MoeSaved;
}

interface Saved {
  B: number;
  T: number;
  tokens: Int32Array;
  layers: LayerCache[];
  xFinal: F64;
  rFinal: F64;
}

/** The attention shapes of one batch: B × T positions, h query heads of hd, g KV heads each shared by rep. */
interface AttnDims {
  B: number;
  T: number;
  h: number;
  g: number;
  hd: number;
  rep: number;
  scale: number;
}

function attnDims(c: ModelConfig, B: number, T: number): AttnDims {
  const hd = headDim(c);
  return { B, T, h: c.nHeads, g: c.nKvHeads, hd, rep: c.nHeads / c.nKvHeads, scale: 1 / Math.sqrt(hd) };
}

/** Causal softmax attention: probs [B·h·T·T] (row t over s ≤ t) and the heads' outputs att [N × h·hd]. */
function attention64(q: F64, k: F64, v: F64, a: AttnDims): { probs: F64; att: F64 } {
  const { B, T, h, g, hd, rep, scale } = a;
  const probs = new Float64Array(B * h * T * T);
  const att = new Float64Array(B * T * h * hd);
  for (let b = 0; b < B; b++) {
    for (let hh = 0; hh < h; hh++) {
      const kh = Math.floor(hh / rep);
      for (let t = 0; t < T; t++) {
        const pr = (b * h + hh) * T * T + t * T;
        let mx = -Infinity;
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < hd; i++)
            dot += at(q, (b * T + t) * h * hd + hh * hd + i) * at(k, (b * T + s) * g * hd + kh * hd + i);
          probs[pr + s] = dot * scale;
          mx = Math.max(mx, at(probs, pr + s));
        }
        let z = 0;
        for (let s = 0; s <= t; s++) z += probs[pr + s] = Math.exp(at(probs, pr + s) - mx);
        for (let s = 0; s <= t; s++) {
          const pv = (probs[pr + s] = at(probs, pr + s) / z);
          for (let i = 0; i < hd; i++)
            add(att, (b * T + t) * h * hd + hh * hd + i, pv * at(v, (b * T + s) * g * hd + kh * hd + i));
        }
      }
    }
  }
  return { probs, att };
}

/** Backward of attention64 from datt [N × h·hd] to dq [N × h·hd], dk and dv [N × g·hd] (before RoPE's inverse). */
function attentionBack64(L: LayerCache, datt: F64, a: AttnDims): { dq: F64; dk: F64; dv: F64 } {
  const { B, T, h, g, hd, rep, scale } = a;
  const N = B * T;
  const dq = new Float64Array(N * h * hd),
    dk = new Float64Array(N * g * hd),
    dv = new Float64Array(N * g * hd);
  for (let b = 0; b < B; b++) {
    for (let hh = 0; hh < h; hh++) {
      const kh = Math.floor(hh / rep);
      for (let t = 0; t < T; t++) {
        const pr = (b * h + hh) * T * T + t * T;
        const qi = (b * T + t) * h * hd + hh * hd;
        const dP = new Float64Array(t + 1);
        let sum = 0;
        for (let u = 0; u <= t; u++) {
          const vi = (b * T + u) * g * hd + kh * hd;
          let dot = 0;
          for (let i = 0; i < hd; i++) {
            dot += at(datt, qi + i) * at(L.v, vi + i);
            add(dv, vi + i, at(L.probs, pr + u) * at(datt, qi + i));
          }
          dP[u] = dot;
          sum += at(L.probs, pr + u) * dot;
        }
        for (let u = 0; u <= t; u++) {
          const dS = at(L.probs, pr + u) * (at(dP, u) - sum) * scale;
          const ki = (b * T + u) * g * hd + kh * hd;
          for (let i = 0; i < hd; i++) {
            add(dq, qi + i, dS * at(L.k, ki + i));
            add(dk, ki + i, dS * at(L.q, qi + i));
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}

export class ReferenceEngine implements ModelEngine {
  readonly layout: TensorSlot[];
  readonly numParams: number;
  private readonly off: Map<string, TensorSlot>;
  private saved: Saved | undefined;
  private stats: MoeLayerStats[] = [];
  private decoder: ReferenceDecoder | undefined;

  constructor(readonly config: ModelConfig) {
    this.layout = paramLayout(config);
    this.numParams = parameterCount(config);
    this.off = new Map(this.layout.map((s) => [s.name, s]));
  }

  private o(name: string): number {
    const slot = this.off.get(name);
    invariant(slot, `the layout holds ${name}`);
    return slot.offset;
  }

  private rms(x: F64, N: number, P: F64, wo: number): { r: F64; y: F64 } {
    const d = this.config.dModel;
    const r = new Float64Array(N),
      y = new Float64Array(N * d);
    for (let n = 0; n < N; n++) {
      let ss = 0;
      for (let i = 0; i < d; i++) ss += at(x, n * d + i) ** 2;
      const rn = 1 / Math.sqrt(ss / d + this.config.normEps);
      r[n] = rn;
      for (let i = 0; i < d; i++) y[n * d + i] = at(x, n * d + i) * rn * at(P, wo + i);
    }
    return { r, y };
  }

  /** dx (accumulated) and dw (at offset wo of G) of y = x · r · w, r = (mean x² + eps)^-½. */
  private rmsBack(dy: F64, x: F64, r: F64, N: number, P: F64, G: F64, wo: number, dx: F64): void {
    const d = this.config.dModel;
    for (let n = 0; n < N; n++) {
      const rn = at(r, n);
      let dot = 0;
      for (let i = 0; i < d; i++) {
        const g = at(dy, n * d + i) * at(P, wo + i);
        dot += g * at(x, n * d + i);
        add(G, wo + i, at(dy, n * d + i) * at(x, n * d + i) * rn);
      }
      for (let i = 0; i < d; i++) {
        add(dx, n * d + i, rn * at(dy, n * d + i) * at(P, wo + i) - (at(x, n * d + i) * rn * rn * rn * dot) / d);
      }
    }
  }

  /** Rotate-half RoPE on rows [N × nh·hd] in place; sign −1 applies the inverse rotation (backward). */
  private rope(x: F64, N: number, T: number, nh: number, sign: 1 | -1): void {
    const hd = headDim(this.config),
      half = hd / 2;
    for (let n = 0; n < N; n++) {
      const pos = n % T;
      for (let hh = 0; hh < nh; hh++) {
        for (let i = 0; i < half; i++) {
          const ang = pos * Math.pow(this.config.ropeTheta, (-2 * i) / hd);
          const c = Math.cos(ang),
            s = sign * Math.sin(ang);
          const base = n * nh * hd + hh * hd;
          const x1 = at(x, base + i),
            x2 = at(x, base + i + half);
          x[base + i] = x1 * c - x2 * s;
          x[base + i + half] = x2 * c + x1 * s;
        }
      }
    }
  }

  forward(params: Float32Array, tokens: Int32Array, B: number, T: number): Float32Array {
    checkForward(this.config, this.numParams, params, tokens, B, T);
    return Float32Array.from(this.forward64(Float64Array.from(params), tokens, B, T));
  }

  /** The forward in float64 on float64 parameters (used by finite-difference checks). */
  forward64(P: F64, tokens: Int32Array, B: number, T: number): F64 {
    const c = this.config;
    const d = c.dModel,
      N = B * T;
    const emb = this.o('embed');
    let x: F64 = new Float64Array(N * d);
    for (let n = 0; n < N; n++) for (let i = 0; i < d; i++) x[n * d + i] = at(P, emb + at(tokens, n) * d + i);
    const layers: LayerCache[] = [];
    const stats: MoeLayerStats[] = [];
    for (let l = 0; l < c.nLayers; l++) {
      const L = this.layerForward64(P, x, l, attnDims(c, B, T), stats);
      layers.push(L.cache);
      x = L.out;
    }
    const { r: rFinal, y } = this.rms(x, N, P, this.o('norm'));
    this.saved = { B, T, tokens: Int32Array.from(tokens), layers, xFinal: x, rFinal };
    this.stats = stats;
    return y;
  }

  /** One decoder layer: x + attention(norm(x)), then + FFN(norm(·)) (dense SwiGLU, or the MoE FFN). */
  private layerForward64(
    P: F64,
    xIn: F64,
    l: number,
    a: AttnDims,
    stats: MoeLayerStats[],
  ): { out: F64; cache: LayerCache } {
    const c = this.config;
    const { h, g, hd } = a;
    const d = c.dModel,
      f = c.ffnDim,
      N = a.B * a.T;
    const p = `layers.${l}.`;
    const { r: r1, y: h1 } = this.rms(xIn, N, P, this.o(`${p}attn_norm`));
    const q = linear(h1, N, d, P, this.o(`${p}wq`), h * hd);
    const k = linear(h1, N, d, P, this.o(`${p}wk`), g * hd);
    const v = linear(h1, N, d, P, this.o(`${p}wv`), g * hd);
    this.rope(q, N, a.T, h, 1);
    this.rope(k, N, a.T, g, 1);
    const { probs, att } = attention64(q, k, v, a);
    const ao = linear(att, N, h * hd, P, this.o(`${p}wo`), d);
    const xMid = new Float64Array(N * d);
    for (let i = 0; i < xMid.length; i++) xMid[i] = at(xIn, i) + at(ao, i);
    const { r: r2, y: h2 } = this.rms(xMid, N, P, this.o(`${p}ffn_norm`));
    const none: F64 = new Float64Array(0);
    let au = none,
      u = none,
      m = none,
      fo: F64,
      moe: MoeSaved | undefined;
    if (c.moe && isMoeLayer(l, c.moe)) {
      const r = moeForward64(moeDims(d, c.moe), P, moeOffsets(this.off, l), h2, N);
      fo = r.out;
      moe = r.saved;
      stats.push(r.stats);
    } else {
      au = linear(h2, N, d, P, this.o(`${p}w1`), f);
      u = linear(h2, N, d, P, this.o(`${p}w3`), f);
      m = new Float64Array(N * f);
      for (let i = 0; i < m.length; i++) m[i] = (at(au, i) / (1 + Math.exp(-at(au, i)))) * at(u, i);
      fo = linear(m, N, f, P, this.o(`${p}w2`), d);
    }
    const out = new Float64Array(N * d);
    for (let i = 0; i < out.length; i++) out[i] = at(xMid, i) + at(fo, i);
    const cache: LayerCache = { xIn, r1, h1, q, k, v, probs, att, xMid, r2, h2, a: au, u, m, ...(moe ? { moe } : {}) };
    return { out, cache };
  }

  /**
   * Incremental decoding in float64: the prompts go through ReferenceDecoder one position at a time (the float64
   * KV-cache path the full forward checks); params are read once here and kept for the decode steps.
   */
  prefill(params: Float32Array, tokens: Int32Array, B: number, T: number, maxLen: number): Float32Array {
    checkPrefill(this.config, this.numParams, params, tokens, B, T, maxLen);
    const dec = new ReferenceDecoder(this.config, this.off, Float64Array.from(params), B, maxLen);
    this.decoder = undefined;
    this.saved = undefined;
    const out = dec.prefill(tokens, T);
    this.decoder = dec;
    return out;
  }

  /** One position per sequence on the float64 KV cache (params must be those given to prefill). */
  decodeStep(params: Float32Array, tokens: Int32Array): Float32Array {
    checkParams(this.numParams, params);
    const dec = this.decoder;
    checkDecode(this.config, dec, tokens);
    invariant(dec, 'checkDecode refuses a missing prefill');
    return Float32Array.from(dec.step(tokens));
  }

  /** The experts chosen in the last forward, per MoE layer [N×k] (slots in selection order). */
  moeRouting(): Int32Array[] {
    return (this.saved?.layers ?? []).flatMap((L) => (L.moe ? [L.moe.sel] : []));
  }

  /** Routing statistics of the last forward, one entry per MoE layer in layer order (empty for dense models). */
  moeStats(): MoeLayerStats[] {
    return this.stats;
  }

  /** Backward in float64; the result is added to grads (rounded once to float32 per element). */
  backward(params: Float32Array, dHidden: Float32Array, grads: Float32Array, auxWeight = 1): void {
    const c = this.config;
    checkParams(this.numParams, params);
    const s = this.saved;
    checkBackward(this.numParams, s ? s.B * s.T : undefined, c.dModel, dHidden, grads);
    const G = this.backward64(Float64Array.from(params), Float64Array.from(dHidden), auxWeight);
    const lm = this.off.get('lm_head');
    for (let i = 0; i < G.length; i++) {
      if (lm && i >= lm.offset && i < lm.offset + lm.size) continue;
      grads[i] = at(grads, i) + at(G, i);
    }
  }

  /**
   * Float64 gradients of Σ dHidden ⊙ forward(params) + auxWeight · Σ_layers auxLoss w.r.t. every parameter
   * (the LM head slot stays 0).
   */
  backward64(P: F64, dOut: F64, auxWeight = 1): F64 {
    const c = this.config,
      s = this.saved;
    invariant(s, 'backward64 follows a forward (backward checks it for callers)');
    const d = c.dModel,
      N = s.B * s.T;
    const a = attnDims(c, s.B, s.T);
    const G = new Float64Array(this.numParams);
    let dx: F64 = new Float64Array(N * d);
    this.rmsBack(dOut, s.xFinal, s.rFinal, N, P, G, this.o('norm'), dx);
    for (let l = c.nLayers - 1; l >= 0; l--) {
      const L = s.layers[l];
      invariant(L, `forward saved layer ${l}`);
      dx = this.layerBackward64(P, L, l, a, dx, G, auxWeight);
    }
    const emb = this.o('embed');
    for (let n = 0; n < N; n++) for (let i = 0; i < d; i++) add(G, emb + at(s.tokens, n) * d + i, at(dx, n * d + i));
    return G;
  }

  /** Backward of one layer from dx (the gradient of its output); accumulates into G, returns dx of its input. */
  private layerBackward64(P: F64, L: LayerCache, l: number, a: AttnDims, dx: F64, G: F64, auxWeight: number): F64 {
    const c = this.config;
    const { h, g, hd } = a;
    const d = c.dModel,
      f = c.ffnDim,
      N = a.B * a.T;
    const p = `layers.${l}.`;
    const dh2 = new Float64Array(N * d);
    if (L.moe && c.moe) {
      moeBackward64(moeDims(d, c.moe), P, moeOffsets(this.off, l), L.moe, dx, G, dh2, auxWeight);
    } else {
      // x_out = xMid + (silu(a) ⊙ u) · W2ᵀ
      const dm = new Float64Array(N * f);
      linearBack(dx, L.m, N, f, P, G, this.o(`${p}w2`), d, dm);
      const da = new Float64Array(N * f),
        du = new Float64Array(N * f);
      for (let i = 0; i < dm.length; i++) {
        const ai = at(L.a, i),
          sg = 1 / (1 + Math.exp(-ai));
        du[i] = at(dm, i) * ai * sg;
        da[i] = at(dm, i) * at(L.u, i) * sg * (1 + ai * (1 - sg));
      }
      linearBack(da, L.h2, N, d, P, G, this.o(`${p}w1`), f, dh2);
      linearBack(du, L.h2, N, d, P, G, this.o(`${p}w3`), f, dh2);
    }
    const dxMid = Float64Array.from(dx);
    this.rmsBack(dh2, L.xMid, L.r2, N, P, G, this.o(`${p}ffn_norm`), dxMid);
    // xMid = xIn + att · Woᵀ
    const datt = new Float64Array(N * h * hd);
    linearBack(dxMid, L.att, N, h * hd, P, G, this.o(`${p}wo`), d, datt);
    const { dq, dk, dv } = attentionBack64(L, datt, a);
    this.rope(dq, N, a.T, h, -1);
    this.rope(dk, N, a.T, g, -1);
    const dh1 = new Float64Array(N * d);
    linearBack(dq, L.h1, N, d, P, G, this.o(`${p}wq`), h * hd, dh1);
    linearBack(dk, L.h1, N, d, P, G, this.o(`${p}wk`), g * hd, dh1);
    linearBack(dv, L.h1, N, d, P, G, this.o(`${p}wv`), g * hd, dh1);
    const dxIn = Float64Array.from(dxMid);
    this.rmsBack(dh1, L.xIn, L.r1, N, P, G, this.o(`${p}attn_norm`), dxIn);
    return dxIn;
  }

  dispose(): void {
    this.saved = undefined;
    this.decoder = undefined;
    this.stats = [];
  }
}
