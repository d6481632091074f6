/* Distillery native C ABI: the Llama-style decoder engine (forward to the final-norm hidden states,
 * backward from their gradient) and its building blocks, plus AdamW and gradient-norm helpers.
 * Shapes: B sequences × T positions, N = B·T rows, d model width, h heads, g KV heads, hd = d/h,
 * f FFN width. Linear weights are [out × in] row-major (y = x·Wᵀ); parameters and gradients use the
 * flat canonical layout of src/core/model.ts weightShapes(). All CPU kernels are deterministic: the
 * result does not depend on the number of threads.
 * Reference: src/engine/reference.ts (float64 TypeScript); tests in test/engine/. */
#ifndef DN_ENGINE_H
#define DN_ENGINE_H
#include "common/dn_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Mixture-of-experts FFN (src/core/moe.ts): E routed experts of width F, k active per token, shared experts as
 * one SwiGLU of width SF = S·F (0: none). router: 0 sigmoid (Llama 4), 1 softmax over the chosen logits.
 * balance: 0 aux loss with `coef`, 1 selection bias (the `router_bias` tensor). The router weight multiplies
 * the routed expert's input: out = shared(h) + Σ_j expert_{e_j}(w_j · h). */
typedef struct {
  int32_t experts, active, expert_ffn, shared_ffn, router, balance;
  float coef;
} dn_moe_config;

typedef struct {
  int32_t vocab_size, d_model, n_layers, n_heads, n_kv_heads, ffn_dim, context_length;
  int32_t tie_embeddings; /* 0/1: the LM head is `embed` (no `lm_head` tensor at the end) */
  float rope_theta, norm_eps;
  /* MoE layers: every `moe_every`-th layer (l = every−1, 2·every−1, …); moe_every = 0: a dense model. */
  int32_t moe_every;
  dn_moe_config moe;
} dn_model_config;

typedef struct dn_model dn_model;

/* Per-op wall time (seconds) accumulated over forward and backward since the last reset. DN_OP_EMBED is the
 * embedding gather/scatter and the residual adds; DN_OP_ROUTE the MoE router logits, top-k, per-expert row lists and
 * router/balance gradients; DN_OP_GATHER gathering each expert's rows and combining them back per token. */
#define DN_MODEL_OP_LIST(X)             \
  X(DN_OP_GEMM, 0, "gemm")              \
  X(DN_OP_ATTENTION, 1, "attention")    \
  X(DN_OP_NORM, 2, "norm")              \
  X(DN_OP_ROPE, 3, "rope")              \
  X(DN_OP_SWIGLU, 4, "swiglu")          \
  X(DN_OP_EMBED, 5, "embed")            \
  X(DN_OP_ROUTE, 6, "route")            \
  X(DN_OP_GATHER, 7, "gather")
typedef enum { DN_MODEL_OP_LIST(DN_ENUM_ENTRY) DN_OP_COUNT = 8 } dn_model_op;

dn_status dn_model_create(const dn_model_config* cfg, dn_model** out);
void dn_model_destroy(dn_model* m);
int64_t dn_model_num_params(const dn_model* m);
/* tokens [B×T] (0 ≤ id < V, T ≤ context) → out [N×d]. Keeps activations for backward; buffers grow
 * to the largest N seen and are reused. */
dn_status dn_model_forward(dn_model* m, const float* params, const int32_t* tokens, int64_t B, int64_t T,
                           float* out);
/* d_hidden [N×d] of the last forward → grads += d(Σ d_hidden ⊙ out + aux_weight · Σ aux losses)/d params,
 * every tensor except `lm_head` (untouched). aux_weight only matters for MoE layers with the aux-loss kind. */
dn_status dn_model_backward(dn_model* m, const float* params, const float* d_hidden, float* grads, float aux_weight);
/* Incremental decoding (cpu/decode.cpp). prefill: dn_model_forward on prompts [B×T] (out [N×d], activations kept
 * as by forward), and every layer's rotated K and V kept in a cache of max_len positions per sequence
 * (T ≤ max_len ≤ context). decode: one token per sequence (tokens [B]) at the next position → out [B×d], the
 * final-norm hidden states of that position; appends its K and V (O(T) attention per token). After a decode,
 * dn_model_backward refuses until the next forward (MoE layers keep the step's routing). */
dn_status dn_model_prefill(dn_model* m, const float* params, const int32_t* tokens, int64_t B, int64_t T,
                           int64_t max_len, float* out);
dn_status dn_model_decode(dn_model* m, const float* params, const int32_t* tokens, float* out);
/* Number of MoE layers, and the routing statistics of MoE layer i (in layer order) from the last forward:
 * load [E] (slots per expert), scalars [4] = {tokens, mean router entropy (nats), balance E·Σ f·P, aux loss}. */
int32_t dn_model_moe_layers(const dn_model* m);
dn_status dn_model_moe_stats(const dn_model* m, int32_t i, double* load, double* scalars);
void dn_model_op_seconds(const dn_model* m, double* out /* [DN_OP_COUNT] */);
void dn_model_reset_timings(dn_model* m);

/* ---- building blocks (CPU) ---- */
/* y = x · rstd · w, rstd[n] = 1/sqrt(mean(x[n]²) + eps). */
dn_status dn_rmsnorm_forward(int64_t n, int64_t d, const float* x, const float* w, float eps, float* y,
                             float* rstd);
/* dx (+)= rstd·(dy⊙w) − x·rstd³·Σ(dy⊙w⊙x)/d (accumulate when accumulate != 0); dw += Σ_n dy⊙x·rstd. */
dn_status dn_rmsnorm_backward(int64_t n, int64_t d, const float* dy, const float* x, const float* w,
                              const float* rstd, float* dx, int accumulate, float* dw);
/* Rotate-half RoPE in place on x: B·T rows of nh·hd values, row stride ld (≥ nh·hd), with tables
 * cos/sin [T_max × hd/2]; position = row % T. inverse != 0 rotates by −angle (the backward). */
dn_status dn_rope_apply(int64_t B, int64_t T, int64_t nh, int64_t hd, const float* cos_t, const float* sin_t,
                        float* x, int64_t ld, int inverse);
/* Causal attention with grouped KV heads: q [N × h·hd] (row stride ldq), k, v [N × g·hd] (row stride
 * ldkv) → out [N × h·hd] (dense), probs [B × h × T × T] (softmax rows on and below the diagonal; above it
 * unspecified) kept for backward. Scale 1/√hd. The strides let q, k, v be column blocks of one fused QKV projection. */
dn_status dn_attention_forward(int64_t B, int64_t T, int64_t h, int64_t g, int64_t hd, const float* q, int64_t ldq,
                               const float* k, const float* v, int64_t ldkv, float* probs, float* out);
/* dout [N × h·hd] (dense) → dq (stride ldq), dk, dv (stride ldkv), overwritten.
 * dscores: scratch [B × h × T × T]. */
dn_status dn_attention_backward(int64_t B, int64_t T, int64_t h, int64_t g, int64_t hd, const float* dout,
                                const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv,
                                const float* probs, float* dscores, float* dq, float* dk, float* dv);
/* SwiGLU over n rows of f values: au rows hold [a | u] (row stride 2f, the fused W1|W3 projection);
 * m [n × f] = silu(a) ⊙ u. */
dn_status dn_swiglu_forward(int64_t n, int64_t f, const float* au, float* m);
/* dau rows [da | du] (overwritten): da = dm ⊙ u ⊙ silu'(a), du = dm ⊙ silu(a). */
dn_status dn_swiglu_backward(int64_t n, int64_t f, const float* dm, const float* au, float* dau);

/* ---- mixture-of-experts FFN (CPU) ---- */
/* One MoE FFN with its routing and activations, kept from forward for backward (buffers grow to the largest
 * N seen). Weights are read at offsets into a flat buffer P (gradients at the same offsets of G), as laid
 * out by moeLayerShapes (src/core/moe.ts): router [E×d], router_bias [E] (balance 1 only; −1 otherwise),
 * shared_w1 | shared_w3 [2·SF×d] (adjacent) and shared_w2 [d×SF] (−1 without shared experts), experts_gate_up
 * [E×2F×d], experts_down [E×d×F]. Deterministic: tokens go to per-expert row lists in token order, one GEMM
 * per expert, and every output element has one writer with a fixed summation order. Reference:
 * src/engine/moe/reference.ts (float64). */
typedef struct dn_moe dn_moe;
typedef struct {
  int64_t router, router_bias, shared_w1, shared_w2, gate_up, down;
} dn_moe_offsets;
dn_status dn_moe_create(int64_t d, const dn_moe_config* cfg, dn_moe** out);
void dn_moe_destroy(dn_moe* moe);
/* h [N×d] → out [N×d] += MoE(h). Routing statistics of this call: dn_moe_stats. */
dn_status dn_moe_forward(dn_moe* moe, const float* P, const dn_moe_offsets* o, int64_t N, const float* h,
                         float* out);
/* dout [N×d] (gradient of out) → dh [N×d] (overwritten), G += the parameter gradients, including
 * aux_weight × the aux loss's. The selection bias gets none. */
dn_status dn_moe_backward(dn_moe* moe, const float* P, const dn_moe_offsets* o, const float* dout, float aux_weight,
                          float* G, float* dh);
/* load [E] and scalars [4] = {tokens, entropy, balance, aux loss} of the last forward. */
dn_status dn_moe_stats(const dn_moe* moe, double* load, double* scalars);
/* Seconds per op kind (routing, gather/scatter, GEMMs, SwiGLU) since creation or the last reset. */
void dn_moe_op_seconds(const dn_moe* moe, double* out /* [DN_OP_COUNT] */);
void dn_moe_reset_timings(dn_moe* moe);

/* ---- optimizer ---- */
/* AdamW (decoupled weight decay) on n elements, bias-corrected with step t ≥ 1, with g = grad_scale · grads
 * (the clipping coefficient, applied as the gradient is read): m = β1 m + (1−β1) g; v = β2 v + (1−β2) g²;
 * p −= lr·(m̂/(√v̂ + eps) + wd·p). With zero_grads, grads is cleared in the same pass (ready for the next step). */
dn_status dn_adamw_step(int64_t n, float* params, float* grads, float* m, float* v, float lr, float beta1,
                        float beta2, float eps, float weight_decay, int64_t t, float grad_scale, int zero_grads);
/* Σ x² in double, fixed-order blocked reduction (same result for any thread count). */
double dn_sum_squares(int64_t n, const float* x);
/* x *= s. */
void dn_scale(int64_t n, float* x, float s);

#ifdef __cplusplus
}
#endif
#endif
