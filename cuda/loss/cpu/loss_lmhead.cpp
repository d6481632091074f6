// Fused LM-head loss (dn_lm_head_loss_f32): hidden [N×d] · weightᵀ [d×V] → loss, dHidden [N×d] and
// dWeight [V×d], chunk_rows rows at a time, so only chunk_rows × V logits ever exist.
#include <algorithm>

#include "common/dn_buffer.h"
#include "gemm/dn_gemm.h"
#include "loss/dn_loss.h"
#include "loss/dn_loss_math.h"

extern "C" dn_status dn_lm_head_loss_f32(const dn_loss_params* params, int64_t n, int64_t d, int64_t v,
                                         const float* hidden, const float* weight, const int32_t* labels,
                                         const int32_t* teacher_ids, const float* teacher_logp, int64_t k,
                                         int64_t chunk_rows, float* grad_hidden, float* grad_weight,
                                         dn_loss_result* out) {
  if (d <= 0 || (n > 0 && (!hidden || !weight || !grad_hidden)))
    return dn_fail(DN_INVALID_ARGUMENT, "lm head: d must be > 0 and hidden/weight/grad_hidden non-NULL");
  if (chunk_rows <= 0) return dn_fail(DN_INVALID_ARGUMENT, "lm head: chunk_rows must be > 0");
  // The mean is over the counted rows of the whole batch, so the gradient scale is known up front.
  int64_t counted = n;
  if (labels) {
    counted = 0;
    for (int64_t r = 0; r < n; ++r) counted += labels[r] != -100;
  }
  const double denom = counted > 0 ? (double)counted : 1.0;
  dn_status st = dn_validate_loss_args(params, n, v, hidden, v, labels, teacher_ids, teacher_logp, k, denom,
                                       grad_hidden, out);
  if (st != DN_OK) return st;

  *out = dn_loss_result{0, 0, 0, 0, 0, -1, -1};
  const int64_t rows = std::min<int64_t>(chunk_rows, std::max<int64_t>(n, 1));
  // Kept between calls (per calling thread): a fresh chunk buffer per step would page-fault its
  // whole size in again every training step. 64-byte aligned, so that dn_sgemm may stream the logits past the caches.
  static thread_local dn_common::AlignedFloats buf;
  float* const logits = buf.get((size_t)(rows * v));
  if (!logits)
    return dn_fail(DN_OUT_OF_MEMORY, "lm head: cannot allocate %lld × %lld logits; lower chunk_rows",
                   (long long)rows, (long long)v);
  for (int64_t r0 = 0; r0 < n; r0 += rows) {
    const int64_t m = std::min(rows, n - r0);
    const float* h = hidden + r0 * d;
    if ((st = dn_sgemm(0, 1, m, v, d, 1.0f, h, d, weight, d, 0.0f, logits, v)) != DN_OK) return st;
    dn_loss_result part{0, 0, 0, 0, 0, -1, -1};
    st = dn_loss_rows_f32(params, m, v, logits, v, labels ? labels + r0 : nullptr,
                          teacher_ids ? teacher_ids + r0 * k : nullptr,
                          teacher_logp ? teacher_logp + r0 * k : nullptr, k, denom, logits, &part);
    if (st != DN_OK) {
      if (part.bad_row >= 0) {
        out->bad_row = part.bad_row + r0;
        out->bad_col = part.bad_col;
        return dn_fail(st, "non-finite student logit at row %lld, column %lld (hidden · weightᵀ)",
                       (long long)out->bad_row, (long long)out->bad_col);
      }
      return st;
    }
    out->total_sum += part.total_sum;
    out->hard_sum += part.hard_sum;
    out->soft_sum += part.soft_sum;
    out->counted += part.counted;
    out->agree += part.agree;
    // dHidden = dlogits · W ; dW += dlogitsᵀ · h
    if ((st = dn_sgemm(0, 0, m, d, v, 1.0f, logits, v, weight, d, 0.0f, grad_hidden + r0 * d, d)) != DN_OK)
      return st;
    if (grad_weight && (st = dn_sgemm(1, 0, v, d, m, 1.0f, logits, v, h, d, 1.0f, grad_weight, d)) != DN_OK)
      return st;
  }
  return DN_OK;
}
