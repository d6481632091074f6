// A float64 re-implementation of Hugging Face's LlamaForCausalLM forward, written from transformers'
// src/transformers/models/llama/modeling_llama.py and reading a saved folder the way from_pretrained does:
// config.json by LlamaConfig's keys and the weights by their state-dict names. It shares no code with the
// engine: if the export names, lays out or configures anything differently, its logits differ.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeSafetensors } from '../../../src/engine/safetensors.js';

type Vec = Float64Array;

export interface HfConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim?: number;
  rms_norm_eps: number;
  rope_theta: number;
  tie_word_embeddings: boolean;
  hidden_act: string;
}

/** A [rows, cols] matrix (row-major, float64) from a state-dict tensor. */
interface Mat {
  rows: number;
  cols: number;
  w: Vec;
}

export function loadHfFolder(dir: string): { config: HfConfig; weights: Map<string, Mat> } {
  const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as HfConfig;
  const st = decodeSafetensors(readFileSync(path.join(dir, 'model.safetensors')));
  const weights = new Map<string, Mat>();
  for (const [name, t] of st.tensors) {
    const [rows, cols] = t.shape.length === 2 ? t.shape : [1, t.shape[0]!];
    weights.set(name, { rows: rows!, cols: cols!, w: Float64Array.from(t.data as Float32Array) });
  }
  return { config, weights };
}

/** nn.Linear without bias: y = x Wᵀ for each of the n rows of x. */
function linear(x: Vec[], W: Mat): Vec[] {
  return x.map((row) => {
    const y = new Float64Array(W.rows);
    for (let o = 0; o < W.rows; o++) {
      let s = 0;
      for (let i = 0; i < W.cols; i++) s += row[i]! * W.w[o * W.cols + i]!;
      y[o] = s;
    }
    return y;
  });
}

/** LlamaRMSNorm.forward: weight * (x * rsqrt(mean(x²) + eps)). */
function rmsNorm(x: Vec[], weight: Mat, eps: number): Vec[] {
  return x.map((row) => {
    let v = 0;
    for (const a of row) v += a * a;
    const r = 1 / Math.sqrt(v / row.length + eps);
    return row.map((a, i) => weight.w[i]! * (a * r));
  });
}

/** rotate_half: cat((-x2, x1)) of the two halves of the last dimension. */
function rotateHalf(x: Vec): Vec {
  const h = x.length / 2;
  const out = new Float64Array(x.length);
  for (let i = 0; i < h; i++) {
    out[i] = -x[i + h]!;
    out[i + h] = x[i]!;
  }
  return out;
}

/**
 * LlamaRotaryEmbedding: inv_freq = 1 / base^(arange(0, dim, 2) / dim); freqs = pos · inv_freq;
 * emb = cat((freqs, freqs)); apply_rotary_pos_emb: q·cos + rotate_half(q)·sin.
 */
function applyRope(x: Vec, pos: number, base: number): Vec {
  const dim = x.length;
  const emb = new Float64Array(dim);
  for (let j = 0; j < dim / 2; j++) emb[j] = emb[j + dim / 2] = pos * (1 / Math.pow(base, (2 * j) / dim));
  const rot = rotateHalf(x);
  return x.map((a, i) => a * Math.cos(emb[i]!) + rot[i]! * Math.sin(emb[i]!));
}

const silu = (a: number) => a / (1 + Math.exp(-a));

/** Logits [T][V] of one sequence (position_ids 0…T−1, causal mask, eager attention). */
export function hfLlamaLogits(dir: string, ids: number[]): Vec[] {
  const { config: c, weights } = loadHfFolder(dir);
  const W = (name: string): Mat => {
    const m = weights.get(name);
    if (!m) throw new Error(`missing tensor ${name}`);
    return m;
  };
  if (c.hidden_act !== 'silu') throw new Error(`hidden_act ${c.hidden_act}`);
  const nh = c.num_attention_heads;
  const nkv = c.num_key_value_heads;
  const hd = c.head_dim ?? c.hidden_size / nh;
  const groups = nh / nkv; // repeat_kv: kv head j serves query heads j·groups … (j+1)·groups−1
  const T = ids.length;
  const embed = W('model.embed_tokens.weight');
  let h: Vec[] = ids.map((id) => embed.w.slice(id * embed.cols, (id + 1) * embed.cols));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    const residual = h;
    const x = rmsNorm(h, W(`${p}input_layernorm.weight`), c.rms_norm_eps);
    // view(bsz, q_len, heads, head_dim): head k of a row is its slice [k·hd, (k+1)·hd).
    const heads = (rows: Vec[], n: number) =>
      rows.map((r, t) =>
        Array.from({ length: n }, (_, k) => applyRope(r.slice(k * hd, (k + 1) * hd), t, c.rope_theta)),
      );
    const q = heads(linear(x, W(`${p}self_attn.q_proj.weight`)), nh);
    const k = heads(linear(x, W(`${p}self_attn.k_proj.weight`)), nkv);
    const v = linear(x, W(`${p}self_attn.v_proj.weight`));
    const attn = Array.from({ length: T }, () => new Float64Array(nh * hd));
    for (let head = 0; head < nh; head++) {
      const kvh = Math.floor(head / groups);
      for (let t = 0; t < T; t++) {
        const scores = Array.from({ length: t + 1 }, (_, s) => {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += q[t]![head]![i]! * k[s]![kvh]![i]!;
          return dot / Math.sqrt(hd);
        });
        const mx = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= t; s++)
          for (let i = 0; i < hd; i++) attn[t]![head * hd + i] += (e[s]! / z) * v[s]![kvh * hd + i]!;
      }
    }
    const o = linear(attn, W(`${p}self_attn.o_proj.weight`));
    h = residual.map((r, t) => r.map((a, i) => a + o[t]![i]!));
    const residual2 = h;
    const y = rmsNorm(h, W(`${p}post_attention_layernorm.weight`), c.rms_norm_eps);
    const gate = linear(y, W(`${p}mlp.gate_proj.weight`));
    const up = linear(y, W(`${p}mlp.up_proj.weight`));
    const down = linear(
      gate.map((g, t) => g.map((a, i) => silu(a) * up[t]![i]!)),
      W(`${p}mlp.down_proj.weight`),
    );
    h = residual2.map((r, t) => r.map((a, i) => a + down[t]![i]!));
  }
  const hidden = rmsNorm(h, W('model.norm.weight'), c.rms_norm_eps);
  // tie_word_embeddings: lm_head shares embed_tokens' weight (and is then absent from the file).
  const head = c.tie_word_embeddings ? embed : W('lm_head.weight');
  return linear(hidden, head);
}
