// The Hugging Face Llama contract: tensor names of LlamaForCausalLM and the config.json keys of LlamaConfig,
// mapped to and from Distillery's canonical weights and ModelConfig (src/core/model.ts).
//
// Source: transformers, src/transformers/models/llama/
// - configuration_llama.py, LlamaConfig: vocab_size, hidden_size, intermediate_size, num_hidden_layers,
//   num_attention_heads, num_key_value_heads, head_dim, hidden_act, max_position_embeddings, rms_norm_eps,
//   bos_token_id, eos_token_id, tie_word_embeddings, attention_bias, mlp_bias, and RoPE as `rope_theta`
//   (transformers 4.x) or `rope_parameters = {rope_type, rope_theta}` (5.x, which still reads a top-level
//   rope_theta through PreTrainedConfig's RoPE standardization).
// - modeling_llama.py: LlamaModel holds `embed_tokens`, `layers[i]` and `norm`; LlamaDecoderLayer holds
//   `input_layernorm`, `self_attn` ({q,k,v,o}_proj, nn.Linear so weights are [out, in]), `post_attention_layernorm`
//   and `mlp` (gate_proj, up_proj, down_proj: down(silu(gate(x)) · up(x))); LlamaForCausalLM adds `lm_head`
//   under base_model_prefix "model". The canonical weights use the same [out, in] layout and rotate-half RoPE
//   (rotate_half / apply_rotary_pos_emb), so every tensor maps one to one, unpermuted.
import { DistillError } from '../../core/errors.js';
import { parseModelConfig, weightShapes, type ModelConfig } from '../../core/model.js';

/** Canonical name (src/core/model.ts) → Hugging Face LlamaForCausalLM state-dict name. */
export function hfTensorName(canonical: string): string {
  if (canonical === 'embed') return 'model.embed_tokens.weight';
  if (canonical === 'norm') return 'model.norm.weight';
  if (canonical === 'lm_head') return 'lm_head.weight';
  const m = /^layers\.(\d+)\.(\w+)$/.exec(canonical);
  const part = m ? LAYER_PARTS[m[2] ?? ''] : undefined;
  if (!m || !part) throw new Error(`internal invariant violated: no Hugging Face name for ${canonical}`);
  return `model.layers.${m[1]}.${part}.weight`;
}

const LAYER_PARTS: Record<string, string> = {
  attn_norm: 'input_layernorm',
  wq: 'self_attn.q_proj',
  wk: 'self_attn.k_proj',
  wv: 'self_attn.v_proj',
  wo: 'self_attn.o_proj',
  ffn_norm: 'post_attention_layernorm',
  w1: 'mlp.gate_proj',
  w3: 'mlp.up_proj',
  w2: 'mlp.down_proj',
};

/** Every weight of a config as [canonical name, Hugging Face name, shape], in canonical order. */
export function hfWeights(c: ModelConfig): Array<{ canonical: string; hf: string; shape: number[] }> {
  return weightShapes(c).map(([canonical, shape]) => ({ canonical, hf: hfTensorName(canonical), shape }));
}

export type HfDType = 'f32' | 'bf16' | 'f16';
export const HF_DTYPES: readonly HfDType[] = ['f32', 'bf16', 'f16'];
const TORCH_DTYPE: Record<HfDType, string> = { f32: 'float32', bf16: 'bfloat16', f16: 'float16' };

/** config.json of LlamaForCausalLM for a dense model config. */
export function toHfConfig(
  c: ModelConfig,
  tokens: { bosTokenId: number | null; eosTokenId: number },
  dtype: HfDType,
): Record<string, unknown> {
  if (c.moe) throw new Error('internal invariant violated: toHfConfig on a mixture-of-experts config');
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    ...hfConfigCommon(c, tokens, dtype),
    intermediate_size: c.ffnDim,
    mlp_bias: false,
    pretraining_tp: 1,
  };
}

/** The config.json keys LlamaConfig and Llama4TextConfig share, for the attention and embeddings. */
export function hfConfigCommon(
  c: ModelConfig,
  tokens: { bosTokenId: number | null; eosTokenId: number },
  dtype: HfDType,
): Record<string, unknown> {
  return {
    vocab_size: c.vocabSize,
    hidden_size: c.dModel,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    head_dim: c.dModel / c.nHeads,
    hidden_act: 'silu',
    max_position_embeddings: c.contextLength,
    rms_norm_eps: c.normEps,
    rope_theta: c.ropeTheta,
    rope_parameters: { rope_type: 'default', rope_theta: c.ropeTheta },
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0,
    tie_word_embeddings: c.tieEmbeddings,
    bos_token_id: tokens.bosTokenId,
    eos_token_id: tokens.eosTokenId,
    initializer_range: 0.02,
    use_cache: true,
    // 4.x reads torch_dtype, 5.x dtype: the dtype the weights are stored in.
    torch_dtype: TORCH_DTYPE[dtype],
    dtype: TORCH_DTYPE[dtype],
  };
}

type Raw = Record<string, unknown>;

/** Readers of a config.json's keys that throw naming the file and key: a refused feature, a positive integer. */
export function configReader(r: Raw, file: string) {
  return {
    unsupported(what: string, expected: string, found: unknown): never {
      throw new DistillError('E_UNSUPPORTED', `${file}: ${what} is not supported by the engine`, {
        expected,
        found: JSON.stringify(found),
        subject: file,
      });
    },
    int(key: string, fallback?: number): number {
      const v = r[key] ?? fallback;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
        throw new DistillError('E_MODEL', `${file}: ${key} is missing or invalid`, {
          expected: 'a positive integer',
          found: JSON.stringify(v),
          subject: file,
        });
      return v;
    },
  };
}

/**
 * A ModelConfig from a Hugging Face config.json, refusing what the engine does not compute: another
 * architecture, biases, an activation other than SiLU, RoPE scaling, a head_dim other than hidden/heads.
 * `layers` keeps only those layers (depth pruning), renumbered 0…n−1 in the given order.
 */
export function fromHfConfig(raw: unknown, file: string, layers?: number[]): ModelConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new DistillError('E_MODEL', `${file} is not a model config`, { expected: 'a JSON object', subject: file });
  const r = raw as Raw;
  const { unsupported, int } = configReader(r, file);
  const archs = Array.isArray(r.architectures) ? r.architectures : [];
  if (r.model_type !== 'llama' && !archs.includes('LlamaForCausalLM'))
    unsupported('the architecture', 'model_type "llama" (LlamaForCausalLM)', r.model_type ?? archs);
  if ((r.hidden_act ?? 'silu') !== 'silu') unsupported('hidden_act', '"silu"', r.hidden_act);
  if (r.attention_bias === true) unsupported('attention_bias', 'false', true);
  if (r.mlp_bias === true) unsupported('mlp_bias', 'false', true);
  const rope = (r.rope_parameters ?? r.rope_scaling ?? null) as Raw | null;
  const ropeType = rope?.rope_type ?? rope?.type ?? 'default';
  if (ropeType !== 'default') unsupported('RoPE scaling', 'none (rope_type "default")', rope);
  const hidden = int('hidden_size');
  const heads = int('num_attention_heads');
  const headDim = r.head_dim ?? Math.floor(hidden / heads);
  if (headDim !== hidden / heads)
    unsupported('head_dim', `hidden_size / num_attention_heads = ${hidden / heads}`, r.head_dim);
  const nLayers = int('num_hidden_layers');
  const picked = layers ?? Array.from({ length: nLayers }, (_, i) => i);
  for (const l of picked)
    if (!Number.isInteger(l) || l < 0 || l >= nLayers)
      throw new DistillError('E_USAGE', `layer ${l} does not exist in ${file}`, {
        expected: `layer indices 0…${nLayers - 1}`,
        found: picked.join(','),
        subject: file,
      });
  const theta = (rope?.rope_theta ?? r.rope_theta ?? 10000) as number;
  return parseModelConfig(
    {
      vocabSize: int('vocab_size'),
      dModel: hidden,
      nLayers: picked.length,
      nHeads: heads,
      nKvHeads: int('num_key_value_heads', heads),
      ffnDim: int('intermediate_size'),
      contextLength: int('max_position_embeddings'),
      tieEmbeddings: r.tie_word_embeddings === true,
      ropeTheta: theta,
      normEps: (r.rms_norm_eps ?? 1e-6) as number,
    },
    file,
  );
}
