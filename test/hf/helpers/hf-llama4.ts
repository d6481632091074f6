// A float64 re-implementation of Hugging Face's Llama4ForCausalLM forward (text only), written from transformers'
// src/transformers/models/llama4/modeling_llama4.py and configuration_llama4.py, reading a saved folder the way
// from_pretrained does. It implements the Llama 4 features the export must switch off (NoPE layers, chunked
// attention, QK L2 norm, attention temperature tuning) as transformers does, so a config that leaves one on
// gives other logits. It shares no code with the engine.
import { loadHfFolder, type HfConfig } from './hf-llama.js';

type Vec = Float64Array;

interface Llama4Config extends Omit<HfConfig, 'intermediate_size'> {
  num_local_experts: number;
  num_experts_per_tok: number;
  interleave_moe_layer_step?: number;
  moe_layers?: number[];
  no_rope_layers?: number[];
  no_rope_layer_interval?: number;
  layer_types?: string[];
  attention_chunk_size?: number;
  use_qk_norm?: boolean;
  attn_temperature_tuning?: boolean;
  floor_scale?: number;
  attn_scale?: number;
}

const silu = (a: number) => a / (1 + Math.exp(-a));

/** x · W for W [rows = in, cols = out] row-major (torch.bmm with a Parameter, no transpose). */
function matmul(x: Vec, w: Vec, rows: number, cols: number, offset = 0): Vec {
  const y = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) y[j] += x[i]! * w[offset + i * cols + j]!;
  return y;
}

/** nn.Linear without bias: x · Wᵀ, W [out, in]. */
function linear(x: Vec, w: Vec, out: number): Vec {
  const n = x.length;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[i]! * w[o * n + i]!;
    y[o] = s;
  }
  return y;
}

function rmsNorm(x: Vec, weight: Vec | undefined, eps: number): Vec {
  let v = 0;
  for (const a of x) v += a * a;
  const r = 1 / Math.sqrt(v / x.length + eps);
  return x.map((a, i) => (weight ? weight[i]! : 1) * a * r);
}

/** apply_rotary_emb: adjacent pairs (2i, 2i+1) as complex numbers times e^{i·pos·inv_freq[i]}. */
function rotaryPairs(x: Vec, pos: number, base: number): Vec {
  const dim = x.length;
  const out = new Float64Array(dim);
  for (let i = 0; i < dim / 2; i++) {
    const f = pos / Math.pow(base, (2 * i) / dim);
    const a = x[2 * i]!;
    const b = x[2 * i + 1]!;
    out[2 * i] = a * Math.cos(f) - b * Math.sin(f);
    out[2 * i + 1] = a * Math.sin(f) + b * Math.cos(f);
  }
  return out;
}

/** Logits [T][V] of one sequence (position_ids 0…T−1, eager attention). */
export function hfLlama4Logits(dir: string, ids: number[]): Vec[] {
  const { config: raw, weights } = loadHfFolder(dir);
  const c = raw as unknown as Llama4Config;
  const W = (name: string): Vec => {
    const m = weights.get(name);
    if (!m) throw new Error(`missing tensor ${name}`);
    return m.w;
  };
  if (c.hidden_act !== 'silu') throw new Error(`hidden_act ${c.hidden_act}`);
  const L = c.num_hidden_layers;
  const d = c.hidden_size;
  const nh = c.num_attention_heads;
  const nkv = c.num_key_value_heads;
  const hd = c.head_dim ?? d / nh;
  const groups = nh / nkv;
  // Llama4TextConfig's defaults for what a config leaves out.
  const interval = c.no_rope_layer_interval ?? 4;
  const useRope = c.no_rope_layers?.length
    ? c.no_rope_layers
    : Array.from({ length: L }, (_, l) => Number((l + 1) % interval !== 0));
  const step = c.interleave_moe_layer_step ?? 1;
  const moeLayers = new Set(
    c.moe_layers ??
      Array.from({ length: L }, (_, l) => l).filter((l) => l >= step - 1 && (l - (step - 1)) % step === 0),
  );
  const layerTypes = c.layer_types ?? useRope.map((r) => (r ? 'chunked_attention' : 'full_attention'));
  const chunk = c.attention_chunk_size ?? 8192;
  const qkNorm = c.use_qk_norm ?? true;
  const tempTuning = c.attn_temperature_tuning ?? true;
  const floorScale = c.floor_scale ?? 8192;
  const attnScale = c.attn_scale ?? 0.1;
  const E = c.num_local_experts;
  const K = c.num_experts_per_tok;

  const T = ids.length;
  const embed = W('model.embed_tokens.weight');
  let h: Vec[] = ids.map((id) => embed.slice(id * d, (id + 1) * d));
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    const rope = useRope[l] === 1;
    const chunked = layerTypes[l] === 'chunked_attention';
    const x = h.map((r) => rmsNorm(r, W(`${p}input_layernorm.weight`), c.rms_norm_eps));
    const q = x.map((r, t) =>
      Array.from({ length: nh }, (_, k) => {
        let v: Vec = linear(r, W(`${p}self_attn.q_proj.weight`), nh * hd).slice(k * hd, (k + 1) * hd);
        if (rope) v = rotaryPairs(v, t, c.rope_theta);
        if (qkNorm && rope) v = rmsNorm(v, undefined, c.rms_norm_eps);
        // Temperature tuning, on layers without RoPE: q · (log1p(floor((pos + 1) / floor_scale)) · attn_scale + 1).
        if (tempTuning && !rope) v = v.map((a) => a * (Math.log1p(Math.floor((t + 1) / floorScale)) * attnScale + 1));
        return v;
      }),
    );
    const k = x.map((r, t) =>
      Array.from({ length: nkv }, (_, j) => {
        let v: Vec = linear(r, W(`${p}self_attn.k_proj.weight`), nkv * hd).slice(j * hd, (j + 1) * hd);
        if (rope) v = rotaryPairs(v, t, c.rope_theta);
        if (qkNorm && rope) v = rmsNorm(v, undefined, c.rms_norm_eps);
        return v;
      }),
    );
    const v = x.map((r) => linear(r, W(`${p}self_attn.v_proj.weight`), nkv * hd));
    const attn = Array.from({ length: T }, () => new Float64Array(nh * hd));
    for (let head = 0; head < nh; head++) {
      const kvh = Math.floor(head / groups);
      for (let t = 0; t < T; t++) {
        // Causal; a chunked layer also sees only keys of its own block of attention_chunk_size positions.
        const from = chunked ? Math.floor(t / chunk) * chunk : 0;
        const scores: number[] = [];
        for (let s = from; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += q[t]![head]![i]! * k[s]![kvh]![i]!;
          scores.push(dot / Math.sqrt(hd));
        }
        const mx = Math.max(...scores);
        const e = scores.map((sc) => Math.exp(sc - mx));
        const z = e.reduce((a, b) => a + b, 0);
        for (let s = from; s <= t; s++)
          for (let i = 0; i < hd; i++) attn[t]![head * hd + i] += (e[s - from]! / z) * v[s]![kvh * hd + i]!;
      }
    }
    h = h.map((r, t) => {
      const o = linear(attn[t]!, W(`${p}self_attn.o_proj.weight`), d);
      return r.map((a, i) => a + o[i]!);
    });
    const ff = `${p}feed_forward.`;
    const mlp = (y: Vec, prefix: string) => {
      const width = W(`${prefix}gate_proj.weight`).length / d;
      const g = linear(y, W(`${prefix}gate_proj.weight`), width);
      const u = linear(y, W(`${prefix}up_proj.weight`), width);
      return linear(
        g.map((a, i) => silu(a) * u[i]!),
        W(`${prefix}down_proj.weight`),
        d,
      );
    };
    h = h.map((r) => {
      const y = rmsNorm(r, W(`${p}post_attention_layernorm.weight`), c.rms_norm_eps);
      let out: Vec;
      if (moeLayers.has(l)) {
        // Llama4Router: top-k logits, sigmoid of each; Llama4TextMoe: experts on routed_in = y · score.
        const logits = linear(y, W(`${ff}router.weight`), E);
        const chosen = Array.from(logits.keys())
          .sort((a, b) => logits[b]! - logits[a]! || a - b)
          .slice(0, K);
        out = mlp(y, `${ff}shared_expert.`);
        const gateUp = W(`${ff}experts.gate_up_proj`);
        const down = W(`${ff}experts.down_proj`);
        const F = gateUp.length / (E * d * 2);
        for (const e of chosen) {
          const score = 1 / (1 + Math.exp(-logits[e]!));
          const routedIn = y.map((a) => a * score);
          const gu = matmul(routedIn, gateUp, d, 2 * F, e * d * 2 * F);
          const act = new Float64Array(F);
          for (let i = 0; i < F; i++) act[i] = gu[F + i]! * silu(gu[i]!);
          const o = matmul(act, down, F, d, e * F * d);
          out = out.map((a, i) => a + o[i]!);
        }
      } else out = mlp(y, ff);
      return r.map((a, i) => a + out[i]!);
    });
  }
  const head = c.tie_word_embeddings ? embed : W('lm_head.weight');
  return h.map((r) => linear(rmsNorm(r, W('model.norm.weight'), c.rms_norm_eps), head, c.vocab_size));
}
