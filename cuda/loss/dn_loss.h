/* Distillery native C ABI: fused distillation losses with their gradient w.r.t. the student logits,
 * and the fused LM-head loss (hidden [N×d] · weightᵀ [d×V] → loss, dHidden, dWeight) in row chunks.
 * Shapes: N rows (token positions), V vocabulary, k cached teacher entries per row, d model width.
 * Reference: losses/runtime/reference.ts (float64 TypeScript); tests in test/losses/. */
#ifndef DN_LOSS_H
#define DN_LOSS_H
#include "common/dn_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Soft loss kinds, named by their loss id (losses/<id>/ documents each one's math). DN_LOSS_CE means "no soft
 * part". With DN_LOSS_SAMPLED, teacher_logp holds sample counts (>= 0) instead of log-probabilities: the unbiased
 * teacher-weighted cross-entropy −Σ c_j s[id_j] / Σ c_j. */
#define DN_LOSS_KIND_LIST(X)              \
  X(DN_LOSS_CE, 0, "ce")                  \
  X(DN_LOSS_FORWARD_KL, 1, "forward-kl")  \
  X(DN_LOSS_REVERSE_KL, 2, "reverse-kl")  \
  X(DN_LOSS_JSD, 3, "jsd")                \
  X(DN_LOSS_SKEW_KL, 4, "skew-kl")        \
  X(DN_LOSS_TVD, 5, "tvd")                \
  X(DN_LOSS_SAMPLED, 6, "sampled")
typedef enum { DN_LOSS_KIND_LIST(DN_ENUM_ENTRY) } dn_loss_kind;

/* The teacher's support: its k entries renormalized, or k + 1 outcomes with the tail as one bucket. */
#define DN_LOSS_SUPPORT_LIST(X)                   \
  X(DN_SUPPORT_RENORMALIZE, 0, "renormalize")     \
  X(DN_SUPPORT_BUCKET, 1, "bucket")
typedef enum { DN_LOSS_SUPPORT_LIST(DN_ENUM_ENTRY) } dn_loss_support;

/* The CUDA loss kernel: one block per row (any GPU), or one thread-block cluster per row, which reads the row from
 * HBM once (sm_90; where the device or the shape does not allow it, the block kernel runs). */
#define DN_CUDA_LOSS_KERNEL_LIST(X)              \
  X(DN_CUDA_LOSS_KERNEL_ROWS, 0, "rows")         \
  X(DN_CUDA_LOSS_KERNEL_CLUSTER, 1, "cluster")
typedef enum { DN_CUDA_LOSS_KERNEL_LIST(DN_ENUM_ENTRY) } dn_cuda_loss_kernel;

/* Element type of device logits and gradients (dn_cuda_loss_rows). */
#define DN_DTYPE_LIST(X)           \
  X(DN_DTYPE_F32, 0, "f32")        \
  X(DN_DTYPE_BF16, 1, "bf16")
typedef enum { DN_DTYPE_LIST(DN_ENUM_ENTRY) } dn_dtype;

/* total_row = hard_weight · ce_row + soft_weight · scale · soft_row, scale = T² when scale_t2. */
typedef struct {
  int32_t kind;        /* dn_loss_kind of the soft part */
  int32_t support;     /* dn_loss_support */
  float temperature;   /* soft part only; ce is always at T = 1. Bucket needs T = 1. */
  float beta;          /* jsd */
  float alpha;         /* skew-kl */
  int32_t scale_t2;    /* multiply the soft part (loss and gradient) by T² */
  float hard_weight;   /* weight of ce (needs labels) */
  float soft_weight;   /* weight of the soft part (needs a teacher) */
} dn_loss_params;

/* Sums over the rows processed (not means): the caller divides by the counted rows. */
typedef struct {
  double total_sum;
  double hard_sum;
  double soft_sum;   /* already multiplied by T² when scale_t2 */
  int64_t counted;   /* rows whose label is not -100 (all rows without labels) */
  int64_t agree;     /* counted rows where argmax(student) == the teacher's most probable id */
  int64_t bad_row;   /* first non-finite logit (row-major order), -1 when none */
  int64_t bad_col;
} dn_loss_result;

/* Rows of logits (row stride ld ≥ v) → per-row losses and the gradient d total / d logits scaled by
 * 1/denom (denom > 0: the number of counted rows of the whole batch, so chunks can be summed).
 * labels: n int32 or NULL (-100 = ignored row). teacher_ids / teacher_logp: n×k or NULL (k = 0);
 * teacher log-probabilities of −inf mark padding entries (dropped from the support).
 * grad: n×v (row stride v); it may alias logits when ld == v. Ignored rows get a zero gradient.
 * A non-finite logit returns DN_NON_FINITE with out->bad_row/bad_col set (grad is then undefined). */
dn_status dn_loss_rows_f32(const dn_loss_params* params, int64_t n, int64_t v, const float* logits,
                           int64_t ld, const int32_t* labels, const int32_t* teacher_ids,
                           const float* teacher_logp, int64_t k, double denom, float* grad,
                           dn_loss_result* out);

/* Fused LM head: logits = hidden · weightᵀ are formed chunk_rows rows at a time (chunk_rows × V
 * floats of scratch, never N × V), the loss and d logits computed in place, then
 * grad_hidden (n×d, overwritten) = dlogits · weight and grad_weight (v×d) += dlogitsᵀ · hidden.
 * grad_weight may be NULL to skip it. Means are over the counted rows of all n rows. */
dn_status dn_lm_head_loss_f32(const dn_loss_params* params, int64_t n, int64_t d, int64_t v,
                              const float* hidden, const float* weight, const int32_t* labels,
                              const int32_t* teacher_ids, const float* teacher_logp, int64_t k,
                              int64_t chunk_rows, float* grad_hidden, float* grad_weight,
                              dn_loss_result* out);

/* CUDA: the same contract as dn_loss_rows_f32 on device pointers (logits and grad of `dtype`,
 * labels/ids int32, teacher_logp float32) with the kernel of `kernel` (dn_cuda_loss_kernel); `out` is host
 * memory; runs on the default stream and synchronizes. Returns DN_UNSUPPORTED in a build without CUDA. */
dn_status dn_cuda_loss_rows(const dn_loss_params* params, int64_t n, int64_t v, int32_t dtype, int32_t kernel,
                            const void* d_logits, int64_t ld, const int32_t* d_labels,
                            const int32_t* d_teacher_ids, const float* d_teacher_logp, int64_t k,
                            double denom, void* d_grad, dn_loss_result* out);

/* CUDA convenience for hosts without device buffers: copies host float32 inputs to the device
 * (converting logits to `dtype`), runs dn_cuda_loss_rows, copies the gradient back as float32. */
dn_status dn_cuda_loss_rows_host(const dn_loss_params* params, int64_t n, int64_t v, int32_t dtype, int32_t kernel,
                                 const float* logits, const int32_t* labels,
                                 const int32_t* teacher_ids, const float* teacher_logp, int64_t k,
                                 double denom, float* grad, dn_loss_result* out);

#ifdef __cplusplus
}
#endif
#endif
