// SwiGLU gate over rows of the fused W1|W3 projection: au rows [a | u] (stride 2f) → m = silu(a) ⊙ u,
// and its backward into [da | du] rows (dn_engine.h).
// No FP-exception semantics are needed here; without this GCC will not if-convert (and so not
// vectorize) the clamps inside dn_fast_exp.
#pragma GCC optimize("no-trapping-math")
#include <omp.h>

#include "common/dn_simd.h"
#include "engine/dn_engine.h"

namespace {
// Row kernels with restrict pointers: the vectorizer then needs no alias checks.
void swiglu_row(int64_t f, const float* __restrict a, const float* __restrict u, float* __restrict m) {
#pragma omp simd
  for (int64_t i = 0; i < f; ++i) m[i] = a[i] / (1.0f + dn_fast_exp(-a[i])) * u[i];
}

void swiglu_row_back(int64_t f, const float* __restrict g, const float* __restrict a, const float* __restrict u,
                     float* __restrict da, float* __restrict du) {
#pragma omp simd
  for (int64_t i = 0; i < f; ++i) {
    const float x = a[i], sg = 1.0f / (1.0f + dn_fast_exp(-x));
    du[i] = g[i] * x * sg;
    da[i] = g[i] * u[i] * sg * (1.0f + x * (1.0f - sg));
  }
}
}  // namespace

extern "C" dn_status dn_swiglu_forward(int64_t n, int64_t f, const float* au, float* m) {
#pragma omp parallel for schedule(static) if (n * f > 32768)
  for (int64_t r = 0; r < n; ++r) swiglu_row(f, au + r * 2 * f, au + r * 2 * f + f, m + r * f);
  return DN_OK;
}

extern "C" dn_status dn_swiglu_backward(int64_t n, int64_t f, const float* dm, const float* au, float* dau) {
#pragma omp parallel for schedule(static) if (n * f > 32768)
  for (int64_t r = 0; r < n; ++r) {
    swiglu_row_back(f, dm + r * f, au + r * 2 * f, au + r * 2 * f + f, dau + r * 2 * f, dau + r * 2 * f + f);
  }
  return DN_OK;
}
