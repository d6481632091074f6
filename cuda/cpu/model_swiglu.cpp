// SwiGLU gate over rows of the fused W1|W3 projection: au rows [a | u] (stride 2f) → m = silu(a) ⊙ u,
// and its backward into [da | du] rows (dn_model.h).
#include <omp.h>

#include <cmath>

#include "dn_model.h"

extern "C" dn_status dn_swiglu_forward(int64_t n, int64_t f, const float* au, float* m) {
#pragma omp parallel for schedule(static) if (n * f > 32768)
  for (int64_t r = 0; r < n; ++r) {
    const float* a = au + r * 2 * f;
    const float* u = a + f;
    float* mr = m + r * f;
#pragma omp simd
    for (int64_t i = 0; i < f; ++i) mr[i] = a[i] / (1.0f + std::exp(-a[i])) * u[i];
  }
  return DN_OK;
}

extern "C" dn_status dn_swiglu_backward(int64_t n, int64_t f, const float* dm, const float* au, float* dau) {
#pragma omp parallel for schedule(static) if (n * f > 32768)
  for (int64_t r = 0; r < n; ++r) {
    const float* a = au + r * 2 * f;
    const float* u = a + f;
    const float* g = dm + r * f;
    float* da = dau + r * 2 * f;
    float* du = da + f;
#pragma omp simd
    for (int64_t i = 0; i < f; ++i) {
      const float x = a[i], sg = 1.0f / (1.0f + std::exp(-x));
      du[i] = g[i] * x * sg;
      da[i] = g[i] * u[i] * sg * (1.0f + x * (1.0f - sg));
    }
  }
  return DN_OK;
}
