// The optional mixture-of-experts block of a model config (Llama 4 style): its schema, its checks, which
// layers become MoE, and the weight tensors of an MoE layer. Shapes: d = dModel, E experts, F expertFfnDim, S shared.
import { z } from 'zod';
import { DistillError } from './errors.js';

/**
 * Load balancing:
 * - `aux-loss` (Switch/GShard): `coef · E · Σ_e f_e · P_e` per MoE layer, added to the training loss, with f_e the
 *   share of the layer's N·k routing slots taken by expert e and P_e the mean over tokens of the router's
 *   normalized affinity p (softmax router: softmax over all logits; sigmoid router: σ(l_e) / Σ_j σ(l_j), as
 *   DeepSeek-V3's sequence-wise balance loss normalizes it). It equals `coef` at perfect balance.
 * - `bias` (DeepSeek-V3's auxiliary-loss-free balancing): a per-expert bias b is added to the affinities for the
 *   choice of experts only (never to the weights); after each optimizer step b_e += rate · sign(mean load − load_e).
 */
export const MoeBalanceSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('aux-loss'), coef: z.number().min(0).finite() }).strict(),
  z.object({ kind: z.literal('bias'), rate: z.number().positive().finite() }).strict(),
]);

export const MoeConfigSchema = z
  .object({
    /** Routed experts per MoE layer. */
    experts: z.number().int().min(1),
    /** Routed experts each token goes through (top-k). */
    activeExperts: z.number().int().min(1),
    /** Shared experts every token goes through (0: none). Stored as one SwiGLU of width S·F. */
    sharedExperts: z.number().int().min(0).default(1),
    /** Hidden width F of each expert (routed and shared). */
    expertFfnDim: z.number().int().min(1),
    /** Every `every`-th layer is MoE: layers every−1, 2·every−1, … (see moeLayers). */
    every: z.number().int().min(1).default(1),
    /**
     * Router weight of a chosen expert: 'sigmoid' of its logit (Llama 4) or 'softmax' over the chosen logits
     * (Mixtral). The weight multiplies the routed expert's INPUT, as Llama 4 does (transformers,
     * models/llama4/modeling_llama4.py, Llama4TextMoe.forward: `routed_in = hidden_states * router_scores`
     * before `self.experts(routed_in)`): out = shared(h) + Σ_j expert_j(w_j · h). Mixtral and DeepSeek multiply
     * the expert's output instead; with SwiGLU experts the two differ, so a softmax-router model here is not a
     * Mixtral model.
     */
    router: z.enum(['sigmoid', 'softmax']).default('sigmoid'),
    balance: MoeBalanceSchema.default({ kind: 'aux-loss', coef: 0.01 }),
  })
  .strict();

export type MoeConfig = z.infer<typeof MoeConfigSchema>;
export type MoeBalance = z.infer<typeof MoeBalanceSchema>;

/**
 * The indices of the MoE layers: l = every−1, 2·every−1, … < nLayers, the convention of Hugging Face's
 * Llama4TextConfig (transformers, models/llama4/configuration_llama4.py, `__post_init__`:
 * `moe_layers = list(range(interleave_moe_layer_step - 1, num_hidden_layers, interleave_moe_layer_step))`),
 * so `every` maps to `interleave_moe_layer_step`. `every: 1` makes every layer MoE (Scout); `every: 2` makes
 * layers 1, 3, 5, … MoE and keeps 0, 2, 4, … dense (Maverick).
 */
export function moeLayers(nLayers: number, moe: MoeConfig | undefined): number[] {
  if (!moe) return [];
  const out: number[] = [];
  for (let l = moe.every - 1; l < nLayers; l += moe.every) out.push(l);
  return out;
}

export function isMoeLayer(layer: number, moe: MoeConfig | undefined): boolean {
  return moe !== undefined && (layer + 1) % moe.every === 0;
}

/** Checks what the schema cannot: relations between fields. Errors name the field. */
export function checkMoeConfig(moe: MoeConfig, nLayers: number, source: string): void {
  if (moe.activeExperts > moe.experts) {
    throw new DistillError('E_CONFIG', `invalid ${source}: moe.activeExperts must be between 1 and moe.experts`, {
      expected: `1 ≤ activeExperts ≤ experts = ${moe.experts}`,
      found: `moe.activeExperts=${moe.activeExperts}`,
      subject: source,
    });
  }
  if (moe.every > nLayers) {
    throw new DistillError('E_CONFIG', `invalid ${source}: moe.every leaves no MoE layer`, {
      expected: `moe.every ≤ nLayers = ${nLayers} (layers every−1, 2·every−1, … are MoE)`,
      found: `moe.every=${moe.every}`,
      subject: source,
      hint: 'lower moe.every, or drop the moe block for a dense model',
    });
  }
}

/**
 * The FFN tensors of MoE layer `prefix` (`layers.<l>.`), in canonical order, [out, in] row-major like every
 * linear weight (y = x·Wᵀ):
 * - `router` [E, d]: logits l = h·routerᵀ; `router_bias` [E] (balance kind `bias` only: the selection bias,
 *   not trained by gradients);
 * - `shared_w1`, `shared_w3` [S·F, d], `shared_w2` [d, S·F]: the S shared experts as one SwiGLU of width S·F
 *   (a sum of S SwiGLUs of width F is one SwiGLU over their concatenated hidden units);
 * - `experts_gate_up` [E, 2F, d]: per expert its gate rows (F) then its up rows (F), so one GEMM gives [a | u];
 *   it is the per-expert transpose of Hugging Face Llama4TextExperts.gate_up_proj [E, d, 2F];
 * - `experts_down` [E, d, F]: the per-expert transpose of Llama4TextExperts.down_proj [E, F, d].
 */
export function moeLayerShapes(prefix: string, dModel: number, moe: MoeConfig): Array<[string, number[]]> {
  const { experts: E, expertFfnDim: F, sharedExperts: S } = moe;
  const out: Array<[string, number[]]> = [[`${prefix}router`, [E, dModel]]];
  if (moe.balance.kind === 'bias') out.push([`${prefix}router_bias`, [E]]);
  if (S > 0) {
    out.push(
      [`${prefix}shared_w1`, [S * F, dModel]],
      [`${prefix}shared_w3`, [S * F, dModel]],
      [`${prefix}shared_w2`, [dModel, S * F]],
    );
  }
  out.push([`${prefix}experts_gate_up`, [E, 2 * F, dModel]], [`${prefix}experts_down`, [E, dModel, F]]);
  return out;
}

/** Parameters of an MoE layer's FFN that one token uses: router, shared experts and its k routed experts. */
export function moeActiveFfnParams(dModel: number, moe: MoeConfig): number {
  const perExpert = 3 * moe.expertFfnDim * dModel;
  return moe.experts * dModel + (moe.sharedExperts + moe.activeExperts) * perExpert;
}

/** Steps in a row without a single routed token after which an expert is flagged dead in the metrics. */
export const DEAD_EXPERT_STEPS = 20;

/**
 * Routing metrics of one MoE layer over a stretch of tokens (an optimizer step in metrics.jsonl, the held-out
 * split in eval.json): load = routing slots per expert (each token fills activeExperts slots).
 */
export const MoeLayerMetricsSchema = z.object({
  layer: z.number().int().min(0),
  load: z.array(z.number().min(0)),
  /** max load / mean load: 1 is even, experts = every slot on one expert. */
  maxOverMean: z.number(),
  /** Mean over tokens of the entropy (nats) of the router's normalized affinities. */
  entropy: z.number(),
  /** E · Σ_e f_e · P_e (1 at perfect balance). */
  balance: z.number(),
  /** coef · balance with the aux-loss kind (the loss added to training), 0 with the bias kind. */
  auxLoss: z.number(),
  /** Experts that received no token for DEAD_EXPERT_STEPS optimizer steps in a row (training only). */
  dead: z.array(z.number().int().min(0)).optional(),
});
export type MoeLayerMetrics = z.infer<typeof MoeLayerMetricsSchema>;
