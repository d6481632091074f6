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
import { paramLayout, headDim, type ModelConfig } from '../../core/model.js';
import { isMoeLayer, moeLayers, type MoeConfig } from '../../core/moe.js';
import type { TensorInput } from '../safetensors.js';
import { hfConfigCommon, type HfDType } from './llama.js';

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
