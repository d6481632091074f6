// Float64 incremental decoding for the reference engine: one position of B sequences at a time through every layer,
// attending over the K and V kept from the earlier positions (a KV cache). Written apart from the full forward of
// reference.ts, which is its oracle (test/engine/decode.test.ts).
import { at } from '../core/arrays.js';
import { invariant } from '../core/errors.js';
import { headDim, type ModelConfig, type TensorSlot } from '../core/model.js';
import { isMoeLayer } from '../core/moe.js';
import { moeOffsets } from './moe/index.js';
import { moeDims, moeForward64 } from './moe/reference.js';
import { linear } from './reference-ops.js';

type F64 = Float64Array;

export class ReferenceDecoder {
  /** Positions filled per sequence. */
  length = 0;
  private readonly k: F64[];
  private readonly v: F64[];
  private readonly hd: number;

  constructor(
    private readonly c: ModelConfig,
    private readonly off: Map<string, TensorSlot>,
    private readonly P: F64,
    readonly batch: number,
    readonly maxLen: number,
  ) {
    this.hd = headDim(c);
    const size = batch * maxLen * c.nKvHeads * this.hd;
    this.k = Array.from({ length: c.nLayers }, () => new Float64Array(size));
    this.v = Array.from({ length: c.nLayers }, () => new Float64Array(size));
  }

  private o(name: string): number {
    const slot = this.off.get(name);
    invariant(slot, `the layout holds ${name}`);
    return slot.offset;
  }

  private rms(x: F64, w: number): F64 {
    const d = this.c.dModel;
    const y = new Float64Array(x.length);
    for (let n = 0; n < x.length / d; n++) {
      let ss = 0;
      for (let i = 0; i < d; i++) ss += at(x, n * d + i) ** 2;
      const r = 1 / Math.sqrt(ss / d + this.c.normEps);
      for (let i = 0; i < d; i++) y[n * d + i] = at(x, n * d + i) * r * at(this.P, w + i);
    }
    return y;
  }

  /** Rotate-half RoPE of every head of every row at position pos, in place. */
  private rope(x: F64, pos: number): void {
    const hd = this.hd,
      half = hd / 2;
    for (let base = 0; base < x.length; base += hd) {
      for (let i = 0; i < half; i++) {
        const ang = pos * Math.pow(this.c.ropeTheta, (-2 * i) / hd);
        const c = Math.cos(ang),
          s = Math.sin(ang);
        const x1 = at(x, base + i),
          x2 = at(x, base + i + half);
        x[base + i] = x1 * c - x2 * s;
        x[base + i + half] = x2 * c + x1 * s;
      }
    }
  }

  /** Prompts [B×T] one position at a time from position 0 → the hidden states of every position [B·T×d]. */
  prefill(tokens: Int32Array, T: number): Float32Array {
    const B = this.batch,
      d = this.c.dModel;
    const out = new Float32Array(B * T * d);
    const col = new Int32Array(B);
    for (let t = 0; t < T; t++) {
      for (let b = 0; b < B; b++) col[b] = at(tokens, b * T + t);
      const y = this.step(col);
      for (let b = 0; b < B; b++) out.set(y.subarray(b * d, (b + 1) * d), (b * T + t) * d);
    }
    return out;
  }

  /** tokens [B] at position `length` → the final-norm hidden states [B×d] of that position. */
  step(tokens: ArrayLike<number>): F64 {
    const c = this.c,
      B = this.batch,
      pos = this.length,
      d = c.dModel,
      hd = this.hd;
    invariant(pos < this.maxLen, 'the cache has room for another position');
    const h = c.nHeads,
      g = c.nKvHeads,
      rep = h / g,
      kw = g * hd,
      scale = 1 / Math.sqrt(hd);
    const emb = this.o('embed');
    let x: F64 = new Float64Array(B * d);
    for (let b = 0; b < B; b++) for (let i = 0; i < d; i++) x[b * d + i] = at(this.P, emb + at(tokens, b) * d + i);
    for (let l = 0; l < c.nLayers; l++) {
      const p = `layers.${l}.`;
      const K = this.k[l],
        V = this.v[l];
      invariant(K && V, `cache of layer ${l}`);
      const h1 = this.rms(x, this.o(`${p}attn_norm`));
      const q = linear(h1, B, d, this.P, this.o(`${p}wq`), h * hd);
      const k = linear(h1, B, d, this.P, this.o(`${p}wk`), kw);
      const v = linear(h1, B, d, this.P, this.o(`${p}wv`), kw);
      this.rope(q, pos);
      this.rope(k, pos);
      for (let b = 0; b < B; b++) {
        K.set(k.subarray(b * kw, (b + 1) * kw), (b * this.maxLen + pos) * kw);
        V.set(v.subarray(b * kw, (b + 1) * kw), (b * this.maxLen + pos) * kw);
      }
      const att = new Float64Array(B * h * hd);
      for (let b = 0; b < B; b++) {
        for (let hh = 0; hh < h; hh++) {
          const kh = Math.floor(hh / rep);
          const s = new Float64Array(pos + 1);
          let mx = -Infinity;
          for (let u = 0; u <= pos; u++) {
            let dot = 0;
            for (let i = 0; i < hd; i++) {
              dot += at(q, (b * h + hh) * hd + i) * at(K, (b * this.maxLen + u) * kw + kh * hd + i);
            }
            s[u] = dot * scale;
            mx = Math.max(mx, dot * scale);
          }
          let z = 0;
          for (let u = 0; u <= pos; u++) z += s[u] = Math.exp(at(s, u) - mx);
          for (let u = 0; u <= pos; u++) {
            const w = at(s, u) / z;
            for (let i = 0; i < hd; i++) {
              const j = (b * h + hh) * hd + i;
              att[j] = at(att, j) + w * at(V, (b * this.maxLen + u) * kw + kh * hd + i);
            }
          }
        }
      }
      const ao = linear(att, B, h * hd, this.P, this.o(`${p}wo`), d);
      const xMid = Float64Array.from(x, (xi, i) => xi + at(ao, i));
      const h2 = this.rms(xMid, this.o(`${p}ffn_norm`));
      let fo: F64;
      if (c.moe && isMoeLayer(l, c.moe))
        fo = moeForward64(moeDims(d, c.moe), this.P, moeOffsets(this.off, l), h2, B).out;
      else {
        const f = c.ffnDim;
        const a = linear(h2, B, d, this.P, this.o(`${p}w1`), f);
        const u = linear(h2, B, d, this.P, this.o(`${p}w3`), f);
        const m = Float64Array.from(a, (ai, i) => (ai / (1 + Math.exp(-ai))) * at(u, i));
        fo = linear(m, B, f, this.P, this.o(`${p}w2`), d);
      }
      x = Float64Array.from(xMid, (xi, i) => xi + at(fo, i));
    }
    this.length = pos + 1;
    return this.rms(x, this.o('norm'));
  }
}
