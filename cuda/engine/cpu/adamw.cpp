// AdamW with decoupled weight decay, the gradient's sum of squares (for clipping) and scaling, over
// flat float buffers (dn_engine.h). Reductions use fixed 4096-element blocks summed in order.
#include <omp.h>

#include <cmath>
#include <vector>

#include "engine/dn_engine.h"

namespace {
// The update of elements [0, n); kZero clears the gradient as it is read. A template, so each form is one plain
// vectorized loop (a run-time test inside an `omp simd` loop would be a masked store on every element).
template <bool kZero>
void adamw_pass(int64_t n, float* params, float* grads, float* m, float* v, float lr, float beta1, float beta2,
                float eps, float weight_decay, float c1, float c2, float grad_scale) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad_scale * grads[i];
    if (kZero) grads[i] = 0.0f;
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float update = (mi * c1) / (std::sqrt(vi * c2) + eps) + weight_decay * params[i];
    params[i] -= lr * update;
  }
}
}  // namespace

extern "C" dn_status dn_adamw_step(int64_t n, float* params, float* grads, float* m, float* v, float lr,
                                   float beta1, float beta2, float eps, float weight_decay, int64_t t,
                                   float grad_scale, int zero_grads) {
  if (t < 1) return dn_fail(DN_INVALID_ARGUMENT, "dn_adamw_step: step must be >= 1, got %lld", (long long)t);
  // Bias corrections in double: at large t, 1 − β^t in float loses the digits that matter.
  const float c1 = (float)(1.0 / (1.0 - std::pow((double)beta1, (double)t)));
  const float c2 = (float)(1.0 / (1.0 - std::pow((double)beta2, (double)t)));
  // One pass over the five arrays: clipping's scale and the clearing of the gradient ride along instead of each
  // taking a pass of their own (the step is bound by memory traffic).
  if (zero_grads) adamw_pass<true>(n, params, grads, m, v, lr, beta1, beta2, eps, weight_decay, c1, c2, grad_scale);
  else adamw_pass<false>(n, params, grads, m, v, lr, beta1, beta2, eps, weight_decay, c1, c2, grad_scale);
  return DN_OK;
}

extern "C" double dn_sum_squares(int64_t n, const float* x) {
  constexpr int64_t kBlock = 4096;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> part((size_t)blocks, 0.0);
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t i1 = std::min(n, (b + 1) * kBlock);
    double s = 0.0;
    // A simd reduction has a fixed, compile-time lane order: still deterministic.
#pragma omp simd reduction(+ : s)
    for (int64_t i = b * kBlock; i < i1; ++i) s += (double)x[i] * (double)x[i];
    part[b] = s;
  }
  double total = 0.0;
  for (double p : part) total += p;
  return total;
}

extern "C" void dn_scale(int64_t n, float* x, float s) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}
