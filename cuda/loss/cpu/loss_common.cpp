// Argument checks shared by the CPU and CUDA loss entry points (dn_loss.h), and the CUDA entry points'
// stand-ins in a build without CUDA. Messages name the row and entry so callers can report them.
#include <cmath>

#include "loss/dn_loss.h"
#include "loss/dn_loss_math.h"

dn_status dn_validate_loss_args(const dn_loss_params* p, int64_t n, int64_t v, const void* logits, int64_t ld,
                                const int32_t* labels, const int32_t* teacher_ids, const float* teacher_logp,
                                int64_t k, double denom, const void* grad, const dn_loss_result* out,
                                bool host_values) {
  if (!p || !out) return dn_fail(DN_INVALID_ARGUMENT, "loss: params and out must not be NULL");
  if (n < 0 || v <= 0 || k < 0 || ld < v)
    return dn_fail(DN_INVALID_ARGUMENT, "loss: bad shape n=%lld v=%lld k=%lld ld=%lld", (long long)n,
                   (long long)v, (long long)k, (long long)ld);
  if (n > 0 && (!logits || !grad)) return dn_fail(DN_INVALID_ARGUMENT, "loss: logits and grad must not be NULL");
  if (!(denom > 0)) return dn_fail(DN_INVALID_ARGUMENT, "loss: denom must be > 0, got %g", denom);
  if (p->kind < DN_LOSS_CE || p->kind > DN_LOSS_SAMPLED)
    return dn_fail(DN_INVALID_ARGUMENT, "loss: unknown kind %d", p->kind);
  if (p->support != DN_SUPPORT_RENORMALIZE && p->support != DN_SUPPORT_BUCKET)
    return dn_fail(DN_INVALID_ARGUMENT, "loss: unknown support %d", p->support);
  if (!(p->temperature > 0) || !std::isfinite(p->temperature))
    return dn_fail(DN_INVALID_ARGUMENT, "loss: temperature must be a finite number > 0, got %g", p->temperature);
  if (!(p->beta >= 0 && p->beta <= 1)) return dn_fail(DN_INVALID_ARGUMENT, "loss: beta must be in [0, 1], got %g", p->beta);
  if (!(p->alpha >= 0 && p->alpha <= 1)) return dn_fail(DN_INVALID_ARGUMENT, "loss: alpha must be in [0, 1], got %g", p->alpha);
  if (!std::isfinite(p->hard_weight) || !std::isfinite(p->soft_weight))
    return dn_fail(DN_INVALID_ARGUMENT, "loss: weights must be finite");
  const bool soft = p->kind != DN_LOSS_CE && p->soft_weight != 0.0f;
  if (soft && p->support == DN_SUPPORT_BUCKET && p->kind != DN_LOSS_SAMPLED && p->temperature != 1.0f)
    return dn_fail(DN_UNSUPPORTED, "loss: support 'bucket' needs temperature 1, got %g (temper in the teacher runner)",
                   p->temperature);
  // An empty batch has nothing to read (its typed arrays may come without a buffer at all).
  if (n == 0) return DN_OK;
  if (p->hard_weight != 0.0f && !labels) return dn_fail(DN_INVALID_ARGUMENT, "loss: a hard (ce) part needs labels");
  if (soft && (!teacher_ids || !teacher_logp || k <= 0))
    return dn_fail(DN_INVALID_ARGUMENT, "loss: a soft part needs teacher ids and log-probabilities (k > 0)");
  if (!host_values) return DN_OK;
  if (labels) {
    for (int64_t r = 0; r < n; ++r) {
      int32_t y = labels[r];
      if (y != -100 && (y < 0 || y >= v))
        return dn_fail(DN_INVALID_ARGUMENT, "loss: label %d at row %lld is outside [0, %lld) and not -100", y,
                       (long long)r, (long long)v);
    }
  }
  if (teacher_ids && teacher_logp) {
    for (int64_t i = 0; i < n * k; ++i) {
      const float a = teacher_logp[i];
      const bool ok = p->kind == DN_LOSS_SAMPLED ? (std::isfinite(a) && a >= 0) : (a == a && a != INFINITY);
      if (!ok)
        return dn_fail(DN_NON_FINITE, "loss: teacher value %g at row %lld, entry %lld is invalid", a,
                       (long long)(i / k), (long long)(i % k));
      if (teacher_ids[i] < 0 || teacher_ids[i] >= v)
        return dn_fail(DN_INVALID_ARGUMENT, "loss: teacher id %d at row %lld, entry %lld is outside [0, %lld)",
                       teacher_ids[i], (long long)(i / k), (long long)(i % k), (long long)v);
    }
  }
  return DN_OK;
}

#ifndef DISTILLERY_WITH_CUDA
extern "C" dn_status dn_cuda_loss_rows(const dn_loss_params*, int64_t, int64_t, int32_t, int32_t, const void*, int64_t,
                                       const int32_t*, const int32_t*, const float*, int64_t, double, void*,
                                       dn_loss_result*) {
  return dn_fail(DN_UNSUPPORTED, "this build of the addon has no CUDA kernels");
}
extern "C" dn_status dn_cuda_loss_rows_host(const dn_loss_params*, int64_t, int64_t, int32_t, int32_t, const float*,
                                            const int32_t*, const int32_t*, const float*, int64_t, double, float*,
                                            dn_loss_result*) {
  return dn_fail(DN_UNSUPPORTED, "this build of the addon has no CUDA kernels");
}
#endif
