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

typedef struct {
  int32_t vocab_size, d_model, n_layers, n_heads, n_kv_heads, ffn_dim, context_length;
  int32_t tie_embeddings; /* 0/1: the LM head is `embed` (no `lm_head` tensor at the end) */
  float rope_theta, norm_eps;
} dn_model_config;

typedef struct dn_model dn_model;

/* Per-op wall time (seconds) accumulated over forward and backward since the last reset. DN_OP_EMBED is the
 * embedding gather/scatter and the residual adds. */
#define DN_MODEL_OP_LIST(X)             \
  X(DN_OP_GEMM, 0, "gemm")              \
  X(DN_OP_ATTENTION, 1, "attention")    \
  X(DN_OP_NORM, 2, "norm")              \
  X(DN_OP_ROPE, 3, "rope")              \
  X(DN_OP_SWIGLU, 4, "swiglu")          \
  X(DN_OP_EMBED, 5, "embed")
typedef enum { DN_MODEL_OP_LIST(DN_ENUM_ENTRY) DN_OP_COUNT = 6 } dn_model_op;

dn_status dn_model_create(const dn_model_config* cfg, dn_model** out);
void dn_model_destroy(dn_model* m);
int64_t dn_model_num_params(const dn_model* m);
/* tokens [B×T] (0 ≤ id < V, T ≤ context) → out [N×d]. Keeps activations for backward; buffers grow
 * to the largest N seen and are reused. */
dn_status dn_model_forward(dn_model* m, const float* params, const int32_t* tokens, int64_t B, int64_t T,
                           float* out);
/* d_hidden [N×d] of the last forward → grads += d(Σ d_hidden ⊙ out)/d params, every tensor except
 * `lm_head` (untouched). */
dn_status dn_model_backward(dn_model* m, const float* params, const float* d_hidden, float* grads);
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
 * ldkv) → out [N × h·hd] (dense), probs [B × h × T × T] (softmax rows, zero above the diagonal) kept for
 * backward. Scale 1/√hd. The strides let q, k, v be column blocks of one fused QKV projection. */
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

/* ---- optimizer ---- */
/* AdamW (decoupled weight decay) on n elements, bias-corrected with step t ≥ 1:
 * m = β1 m + (1−β1) g; v = β2 v + (1−β2) g²; p −= lr·(m̂/(√v̂ + eps) + wd·p). */
dn_status dn_adamw_step(int64_t n, float* params, const float* grads, float* m, float* v, float lr,
                        float beta1, float beta2, float eps, float weight_decay, int64_t t);
/* Σ x² in double, fixed-order blocked reduction (same result for any thread count). */
double dn_sum_squares(int64_t n, const float* x);
/* x *= s. */
void dn_scale(int64_t n, float* x, float s);

#ifdef __cplusplus
}
#endif
#endif
