// A plain float64 Llama forward for tests: tokens [B×T] → logits [B×T×V], written from the model
// definition in src/core/model.ts (rotate-half RoPE, grouped KV heads, SwiGLU, RMSNorm), no shortcuts.
import { headDim, type ModelConfig } from '../../../src/core/model.js';
import { paramLayout } from '../../../src/core/model.js';

export function refLogits(
  c: ModelConfig,
  params: Float32Array,
  tokens: ArrayLike<number>,
  B: number,
  T: number,
): Float64Array {
  const W = new Map(paramLayout(c).map((s) => [s.name, params.subarray(s.offset, s.offset + s.size)]));
  const w = (n: string) => W.get(n)!;
  const d = c.dModel,
    hd = headDim(c),
    h = c.nHeads,
    g = c.nKvHeads,
    V = c.vocabSize,
    f = c.ffnDim;
  const N = B * T;
  const rms = (x: Float64Array, wt: Float32Array) => {
    const out = new Float64Array(x.length);
    for (let n = 0; n < N; n++) {
      let ss = 0;
      for (let i = 0; i < d; i++) ss += x[n * d + i]! ** 2;
      const inv = 1 / Math.sqrt(ss / d + c.normEps);
      for (let i = 0; i < d; i++) out[n * d + i] = x[n * d + i]! * inv * wt[i]!;
    }
    return out;
  };
  const lin = (x: Float64Array, wt: Float32Array, inp: number, out: number) => {
    const y = new Float64Array(N * out);
    for (let n = 0; n < N; n++)
      for (let o = 0; o < out; o++) {
        let s = 0;
        for (let i = 0; i < inp; i++) s += x[n * inp + i]! * wt[o * inp + i]!;
        y[n * out + o] = s;
      }
    return y;
  };
  const rope = (x: Float64Array, nh: number) => {
    const half = hd / 2;
    for (let n = 0; n < N; n++) {
      const pos = n % T;
      for (let hh = 0; hh < nh; hh++)
        for (let i = 0; i < half; i++) {
          const a = pos * Math.pow(c.ropeTheta, (-2 * i) / hd);
          const base = n * nh * hd + hh * hd;
          const x1 = x[base + i]!,
            x2 = x[base + i + half]!;
          x[base + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
          x[base + i + half] = x2 * Math.cos(a) + x1 * Math.sin(a);
        }
    }
  };
  const emb = w('embed');
  const x = new Float64Array(N * d);
  for (let n = 0; n < N; n++) for (let i = 0; i < d; i++) x[n * d + i] = emb[tokens[n]! * d + i]!;
  for (let l = 0; l < c.nLayers; l++) {
    const p = `layers.${l}.`;
    const xn = rms(x, w(`${p}attn_norm`));
    const q = lin(xn, w(`${p}wq`), d, h * hd),
      k = lin(xn, w(`${p}wk`), d, g * hd),
      v = lin(xn, w(`${p}wv`), d, g * hd);
    rope(q, h);
    rope(k, g);
    const att = new Float64Array(N * h * hd);
    for (let bb = 0; bb < B; bb++)
      for (let hh = 0; hh < h; hh++) {
        const kh = Math.floor(hh / (h / g));
        for (let t = 0; t < T; t++) {
          const sc = new Float64Array(t + 1);
          let mx = -Infinity;
          for (let s = 0; s <= t; s++) {
            let dot = 0;
            for (let i = 0; i < hd; i++)
              dot += q[(bb * T + t) * h * hd + hh * hd + i]! * k[(bb * T + s) * g * hd + kh * hd + i]!;
            sc[s] = dot / Math.sqrt(hd);
            mx = Math.max(mx, sc[s]!);
          }
          let z = 0;
          for (let s = 0; s <= t; s++) z += sc[s] = Math.exp(sc[s]! - mx);
          for (let s = 0; s <= t; s++)
            for (let i = 0; i < hd; i++)
              att[(bb * T + t) * h * hd + hh * hd + i] += (sc[s]! / z) * v[(bb * T + s) * g * hd + kh * hd + i]!;
        }
      }
    const o = lin(att, w(`${p}wo`), h * hd, d);
    for (let i = 0; i < x.length; i++) x[i] += o[i]!;
    const xf = rms(x, w(`${p}ffn_norm`));
    const a = lin(xf, w(`${p}w1`), d, f),
      u = lin(xf, w(`${p}w3`), d, f);
    for (let i = 0; i < a.length; i++) a[i] = (a[i]! / (1 + Math.exp(-a[i]!))) * u[i]!;
    const m = lin(a, w(`${p}w2`), f, d);
    for (let i = 0; i < x.length; i++) x[i] += m[i]!;
  }
  const xn = rms(x, w('norm'));
  return lin(xn, c.tieEmbeddings ? w('embed') : w('lm_head'), d, V);
}

/** Deterministic small random parameters (norm weights near 1) for tests that need no engine. */
export function randomParams(c: ModelConfig, seed = 1, scale = 0.2): Float32Array {
  const layout = paramLayout(c);
  const p = new Float32Array(layout.reduce((n, s) => n + s.size, 0));
  let s = seed >>> 0 || 1;
  const rnd = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  for (const slot of layout) {
    const isNorm = slot.shape.length === 1;
    for (let i = 0; i < slot.size; i++) p[slot.offset + i] = isNorm ? 1 + 0.1 * rnd() : scale * rnd();
  }
  return p;
}
