// SwiGLU gate: m = silu(a) ⊙ u and its backward, elementwise over n values (dn_model.h).
#include <omp.h>

#include <cmath>

#include "dn_model.h"

extern "C" dn_status dn_swiglu_forward(int64_t n, const float* a, const float* u, float* m) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) {
    const float sg = 1.0f / (1.0f + std::exp(-a[i]));
    m[i] = a[i] * sg * u[i];
  }
  return DN_OK;
}

extern "C" dn_status dn_swiglu_backward(int64_t n, const float* dm, const float* a, const float* u, float* da,
                                        float* du) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) {
    const float x = a[i], sg = 1.0f / (1.0f + std::exp(-x));
    du[i] = dm[i] * x * sg;
    da[i] = dm[i] * u[i] * sg * (1.0f + x * (1.0f - sg));
  }
  return DN_OK;
}
