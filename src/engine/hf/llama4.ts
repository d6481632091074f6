// The Hugging Face Llama 4 text contract for mixture-of-experts students: Llama4ForCausalLM's config.json keys
// and state-dict names, mapped from Distillery's canonical weights, with every Llama 4 feature the engine does
// not compute switched off in the config, so that transformers computes what the engine computes.
//
// Source: transformers, src/transformers/models/llama4/
// - configuration_llama4.py, Llama4TextConfig: intermediate_size (each expert's and the shared expert's width),
//   intermediate_size_mlp (the dense layers' width), num_local_experts, num_experts_per_tok,
//   interleave_moe_layer_step and moe_layers (default list(range(step − 1, num_hidden_layers, step)), the rule
//   of src/core/moe.ts moeLayers), no_rope_layers (1 = the layer applies RoPE), layer_types
//   ("chunked_attention" by default on RoPE layers, cut into attention_chunk_size blocks), use_qk_norm,
//   attn_temperature_tuning (only on layers without RoPE).
// - modeling_llama4.py:
//   - Llama4Router: top-k of the router logits, then sigmoid of the chosen logits (no normalization) — the
//     engine's `router: "sigmoid"`; no selection bias exists there.
//   - Llama4TextMoe: `routed_in = hidden_states * router_scores` before the experts (the weight on the expert's
//     input, as the engine does), plus `shared_expert`, one Llama4TextMLP of width intermediate_size.
//   - Llama4TextExperts: gate_up_proj [E, d, 2F] (x · gate_up_proj, then chunk(2): gate first) and down_proj
//     [E, F, d], plain Parameters (no `.weight` suffix): the per-expert transposes of the canonical tensors.
//   - apply_rotary_emb: RoPE on adjacent pairs (2i, 2i+1) as complex numbers. The engine rotates halves
//     (i, i + hd/2), so q_proj and k_proj rows are reordered per head: row 2i ← row i, row 2i+1 ← row i + hd/2.
//     q·k is unchanged by the same reordering of both.
//   - the decoder layer: input_layernorm, self_attn, post_attention_layernorm, feed_forward (Llama4TextMoe on
//     moe_layers, else Llama4TextMLP of intermediate_size_mlp); Llama4TextModel: embed_tokens, layers, norm;
//     Llama4ForCausalLM adds lm_head under the prefix "model".
import { DistillError } from '../../core/errors.js';
import { paramLayout, headDim, parseModelConfig, type ModelConfig } from '../../core/model.js';
import { isMoeLayer, moeLayers, type MoeConfig } from '../../core/moe.js';
import type { TensorInput } from '../safetensors.js';
import { configReader, fromHfConfig, hfConfigCommon, type HfDType } from './llama.js';

/** Why a model cannot be a Llama4ForCausalLM, or undefined when it can. */
export function llama4Refusal(c: ModelConfig): { found: string; hint: string } | undefined {
  const moe = c.moe;
  if (!moe) return undefined;
  if (moe.router !== 'sigmoid')
    return {
      found: `moe.router "${moe.router}"`,
      hint: 'Llama 4 routes with the sigmoid of the chosen logits; a softmax-router student has no Hugging Face twin (Mixtral weighs expert outputs, not inputs)',
    };
  if (moe.balance.kind === 'bias')
    return {
      found: 'moe.balance.kind "bias" (a selection bias in the router)',
      hint: "Llama 4's router has no selection bias; train with balance kind aux-loss to export",
    };
  if (moe.sharedExperts > 1)
    return {
      found: `moe.sharedExperts = ${moe.sharedExperts}`,
      hint: 'Llama 4 has one shared expert as wide as a routed one; use sharedExperts 0 or 1 to export',
    };
  return undefined;
}

/** config.json of Llama4ForCausalLM (model_type llama4_text) for an MoE model config. */
export function toLlama4Config(
  c: ModelConfig,
  moe: MoeConfig,
  tokens: { bosTokenId: number | null; eosTokenId: number },
  dtype: HfDType,
): Record<string, unknown> {
  const L = c.nLayers;
  return {
    ...hfConfigCommon(c, tokens, dtype),
    architectures: ['Llama4ForCausalLM'],
    model_type: 'llama4_text',
    intermediate_size: moe.expertFfnDim,
    intermediate_size_mlp: c.ffnDim,
    num_local_experts: moe.experts,
    num_experts_per_tok: moe.activeExperts,
    interleave_moe_layer_step: moe.every,
    moe_layers: moeLayers(L, moe),
    router_aux_loss_coef: moe.balance.kind === 'aux-loss' ? moe.balance.coef : 0,
    router_jitter_noise: 0,
    output_router_logits: false,
    // RoPE on every layer, full causal attention everywhere, no QK norm, no temperature tuning: the engine's.
    no_rope_layers: Array.from({ length: L }, () => 1),
    layer_types: Array.from({ length: L }, () => 'full_attention'),
    attention_chunk_size: c.contextLength,
    use_qk_norm: false,
    attn_temperature_tuning: false,
  };
}

/**
 * Every weight under its Llama4ForCausalLM name in the layout transformers expects (see the header): q/k rows
 * reordered for pair-wise RoPE, experts transposed, a zero shared expert when the student has none (adding
 * zero, as the engine does without one). `params` is the canonical flat vector.
 */
export function llama4Tensors(
  c: ModelConfig,
  params: Float32Array,
  dtype: 'F32' | 'BF16' | 'F16',
): Array<[string, TensorInput]> {
  const moe = c.moe;
  if (!moe) throw new Error('internal invariant violated: llama4Tensors on a dense config');
  const hd = headDim(c);
  const F = moe.expertFfnDim;
  const d = c.dModel;
  const out: Array<[string, TensorInput]> = [];
  const put = (name: string, shape: number[], data: Float32Array) => out.push([name, { shape, data, dtype }]);
  for (const s of paramLayout(c)) {
    const w = params.subarray(s.offset, s.offset + s.size);
    if (s.name === 'embed') put('model.embed_tokens.weight', s.shape, w);
    else if (s.name === 'norm') put('model.norm.weight', s.shape, w);
    else if (s.name === 'lm_head') put('lm_head.weight', s.shape, w);
    else {
      const m = /^layers\.(\d+)\.(\w+)$/.exec(s.name);
      const l = Number(m?.[1]);
      const part = m?.[2] ?? '';
      const p = `model.layers.${l}.`;
      const ff = `${p}feed_forward.`;
      const moeLayer = isMoeLayer(l, moe);
      switch (part) {
        case 'attn_norm':
          put(`${p}input_layernorm.weight`, s.shape, w);
          break;
        case 'ffn_norm':
          put(`${p}post_attention_layernorm.weight`, s.shape, w);
          break;
        case 'wq':
        case 'wk':
          put(`${p}self_attn.${part === 'wq' ? 'q' : 'k'}_proj.weight`, s.shape, pairRows(w, hd, d));
          break;
        case 'wv':
          put(`${p}self_attn.v_proj.weight`, s.shape, w);
          break;
        case 'wo':
          put(`${p}self_attn.o_proj.weight`, s.shape, w);
          break;
        case 'w1':
        case 'w3':
        case 'w2':
          if (moeLayer) throw new Error(`internal invariant violated: dense ${s.name} in an MoE layer`);
          put(`${ff}${{ w1: 'gate', w3: 'up', w2: 'down' }[part]}_proj.weight`, s.shape, w);
          break;
        case 'router':
          put(`${ff}router.weight`, s.shape, w);
          break;
        case 'shared_w1':
        case 'shared_w3':
        case 'shared_w2':
          put(
            `${ff}shared_expert.${{ shared_w1: 'gate', shared_w3: 'up', shared_w2: 'down' }[part]}_proj.weight`,
            s.shape,
            w,
          );
          break;
        case 'experts_gate_up':
          // canonical [E, 2F, d] → gate_up_proj [E, d, 2F]
          put(`${ff}experts.gate_up_proj`, [moe.experts, d, 2 * F], transposeEach(w, moe.experts, 2 * F, d));
          break;
        case 'experts_down':
          // canonical [E, d, F] → down_proj [E, F, d]
          put(`${ff}experts.down_proj`, [moe.experts, F, d], transposeEach(w, moe.experts, d, F));
          break;
        default:
          throw new DistillError('E_UNSUPPORTED', `${s.name} has no Llama 4 counterpart`, {
            found: s.name,
            hint: 'export a student whose MoE block Llama 4 computes (see docs/hf.md)',
          });
      }
    }
  }
  if (moe.sharedExperts === 0)
    for (const l of moeLayers(c.nLayers, moe)) {
      const ff = `model.layers.${l}.feed_forward.shared_expert.`;
      put(`${ff}gate_proj.weight`, [F, d], new Float32Array(F * d));
      put(`${ff}up_proj.weight`, [F, d], new Float32Array(F * d));
      put(`${ff}down_proj.weight`, [d, F], new Float32Array(F * d));
    }
  return out;
}

/** Rows of each head reordered from halves (i, i + hd/2) to adjacent pairs (2i, 2i+1); `cols` per row. */
function pairRows(w: Float32Array, hd: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  const heads = w.length / (hd * cols);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < hd / 2; i++) {
      const base = h * hd;
      out.set(w.subarray((base + i) * cols, (base + i + 1) * cols), (base + 2 * i) * cols);
      out.set(w.subarray((base + i + hd / 2) * cols, (base + i + hd / 2 + 1) * cols), (base + 2 * i + 1) * cols);
    }
  return out;
}

/** E matrices [r, c] row-major, each transposed to [c, r]. */
function transposeEach(w: Float32Array, E: number, r: number, c: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let e = 0; e < E; e++) {
    const o = e * r * c;
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[o + j * r + i] = w[o + i * c + j] ?? 0;
  }
  return out;
}

/** Rows of each head from adjacent pairs (2i, 2i+1) back to halves (i, i + hd/2): the inverse of pairRows. */
function halfRows(w: Float32Array, hd: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  const heads = w.length / (hd * cols);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < hd / 2; i++) {
      const base = h * hd;
      out.set(w.subarray((base + 2 * i) * cols, (base + 2 * i + 1) * cols), (base + i) * cols);
      out.set(w.subarray((base + 2 * i + 1) * cols, (base + 2 * i + 2) * cols), (base + i + hd / 2) * cols);
    }
  return out;
}

/** A state-dict tensor of the source folder and how it becomes canonical tensor `canonical`. */
export interface SourceTensor {
  hf: string;
  canonical: string;
  /** Its shape in the folder. */
  shape: number[];
  /** Folder layout → canonical layout (same length). */
  toCanonical(data: Float32Array): Float32Array;
}

/**
 * The tensors a Llama4ForCausalLM folder holds for `c`, with the inverse of llama4Tensors' layout changes; a
 * canonical name `layers.<i>.…` stands for the model's layer i, which is the folder's `sourceLayer(i)`.
 */
export function llama4SourceTensors(c: ModelConfig, sourceLayer: (i: number) => number): SourceTensor[] {
  const moe = c.moe;
  if (!moe) throw new Error('internal invariant violated: llama4SourceTensors on a dense config');
  const hd = headDim(c);
  const F = moe.expertFfnDim;
  const d = c.dModel;
  const same = (x: Float32Array) => x;
  return paramLayout(c).map((s): SourceTensor => {
    const t = (hf: string, shape = s.shape, toCanonical = same) => ({ hf, canonical: s.name, shape, toCanonical });
    if (s.name === 'embed') return t('model.embed_tokens.weight');
    if (s.name === 'norm') return t('model.norm.weight');
    if (s.name === 'lm_head') return t('lm_head.weight');
    const m = /^layers\.(\d+)\.(\w+)$/.exec(s.name);
    const p = `model.layers.${sourceLayer(Number(m?.[1]))}.`;
    const ff = `${p}feed_forward.`;
    const part = m?.[2] ?? '';
    const names: Record<string, string> = {
      attn_norm: `${p}input_layernorm.weight`,
      ffn_norm: `${p}post_attention_layernorm.weight`,
      wv: `${p}self_attn.v_proj.weight`,
      wo: `${p}self_attn.o_proj.weight`,
      w1: `${ff}gate_proj.weight`,
      w3: `${ff}up_proj.weight`,
      w2: `${ff}down_proj.weight`,
      router: `${ff}router.weight`,
      shared_w1: `${ff}shared_expert.gate_proj.weight`,
      shared_w3: `${ff}shared_expert.up_proj.weight`,
      shared_w2: `${ff}shared_expert.down_proj.weight`,
    };
    const named = names[part];
    if (named) return t(named);
    if (part === 'wq' || part === 'wk')
      return t(`${p}self_attn.${part === 'wq' ? 'q' : 'k'}_proj.weight`, s.shape, (x) => halfRows(x, hd, d));
    if (part === 'experts_gate_up')
      return t(`${ff}experts.gate_up_proj`, [moe.experts, d, 2 * F], (x) => transposeEach(x, moe.experts, d, 2 * F));
    if (part === 'experts_down')
      return t(`${ff}experts.down_proj`, [moe.experts, F, d], (x) => transposeEach(x, moe.experts, F, d));
    throw new Error(`internal invariant violated: no Llama 4 name for ${s.name}`);
  });
}

type Raw = Record<string, unknown>;

/**
 * A ModelConfig from a Llama4ForCausalLM config.json (Llama4TextConfig keys and defaults), refusing what the
 * engine does not compute: QK norm, layers without RoPE, chunked attention shorter than the context, a pattern
 * of MoE layers (after keeping `layers`) that is not every n-th. The rest is read as for Llama (fromHfConfig).
 */
export function fromLlama4Config(raw: unknown, file: string, layers?: number[]): ModelConfig {
  const r = raw as Raw;
  const { unsupported, int } = configReader(r, file);
  const dense = fromHfConfig(
    { ...r, model_type: 'llama', intermediate_size: r.intermediate_size_mlp ?? r.intermediate_size },
    file,
    layers,
  );
  const L = typeof r.num_hidden_layers === 'number' ? r.num_hidden_layers : dense.nLayers;
  const kept = layers ?? Array.from({ length: L }, (_, i) => i);
  // configuration_llama4.py defaults: use_qk_norm true, a NoPE layer every no_rope_layer_interval (4),
  // chunked attention (attention_chunk_size 8192) on the RoPE layers, MoE every interleave_moe_layer_step (1).
  if (r.use_qk_norm ?? true)
    unsupported('use_qk_norm (L2 norm of q and k)', 'false', r.use_qk_norm ?? 'true (default)');
  const interval = typeof r.no_rope_layer_interval === 'number' ? r.no_rope_layer_interval : 4;
  const noRope =
    Array.isArray(r.no_rope_layers) && r.no_rope_layers.length
      ? (r.no_rope_layers as unknown[])
      : Array.from({ length: L }, (_, l) => Number((l + 1) % interval !== 0));
  const nope = kept.filter((l) => noRope[l] !== 1);
  if (nope.length)
    unsupported(
      'a layer without RoPE (no_rope_layers)',
      'RoPE on every layer (no_rope_layers all 1)',
      `layers ${nope.join(', ')} without RoPE`,
    );
  const types = Array.isArray(r.layer_types) ? (r.layer_types as unknown[]) : kept.map(() => 'chunked_attention');
  const chunk = typeof r.attention_chunk_size === 'number' ? r.attention_chunk_size : 8192;
  if (kept.some((l) => types[l] === 'chunked_attention') && chunk < dense.contextLength)
    unsupported(
      'chunked attention',
      `attention_chunk_size ≥ max_position_embeddings = ${dense.contextLength}, or layer_types "full_attention"`,
      `attention_chunk_size ${chunk}`,
    );
  const step = typeof r.interleave_moe_layer_step === 'number' ? r.interleave_moe_layer_step : 1;
  const moeSource = new Set(
    Array.isArray(r.moe_layers)
      ? (r.moe_layers as number[])
      : Array.from({ length: L }, (_, l) => l).filter((l) => (l + 1) % step === 0),
  );
  const flags = kept.map((l) => moeSource.has(l));
  const every = flags.indexOf(true) + 1;
  if (every === 0 || flags.some((f, i) => f !== ((i + 1) % every === 0)))
    unsupported(
      'the pattern of MoE layers',
      'MoE on layers every−1, 2·every−1, … of the kept layers',
      flags.map((f, i) => (f ? i : null)).filter((x) => x !== null),
    );
  const coef = typeof r.router_aux_loss_coef === 'number' ? r.router_aux_loss_coef : 0.001;
  return parseModelConfig(
    {
      ...dense,
      moe: {
        experts: int('num_local_experts'),
        activeExperts: int('num_experts_per_tok'),
        sharedExperts: 1,
        expertFfnDim: int('intermediate_size'),
        every,
        router: 'sigmoid',
        balance: { kind: 'aux-loss', coef },
      },
    },
    file,
  );
}

/** True when a config.json describes Llama4ForCausalLM (a text-only Llama 4). */
export function isLlama4Config(raw: unknown): boolean {
  const r = (raw ?? {}) as Raw;
  return (
    r.model_type === 'llama4_text' || (Array.isArray(r.architectures) && r.architectures.includes('Llama4ForCausalLM'))
  );
}
