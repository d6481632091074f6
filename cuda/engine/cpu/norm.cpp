// RMSNorm forward/backward over rows [n × d] (dn_engine.h). The weight gradient is reduced in fixed
// 64-row chunks summed in chunk order, so it is bit-identical for any thread count.
#include <omp.h>

#include <cmath>
#include <vector>

#include "engine/dn_engine.h"

namespace {
constexpr int64_t kRowChunk = 64;
}

extern "C" dn_status dn_rmsnorm_forward(int64_t n, int64_t d, const float* x, const float* w, float eps,
                                        float* y, float* rstd) {
  if (n < 0 || d <= 0) return dn_fail(DN_INVALID_ARGUMENT, "dn_rmsnorm_forward: bad shape n=%lld d=%lld", (long long)n, (long long)d);
#pragma omp parallel for schedule(static) if (n * d > 16384)
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < d; ++i) ss += xr[i] * xr[i];
    const float s = 1.0f / std::sqrt(ss / (float)d + eps);
    rstd[r] = s;
#pragma omp simd
    for (int64_t i = 0; i < d; ++i) yr[i] = xr[i] * s * w[i];
  }
  return DN_OK;
}

extern "C" dn_status dn_rmsnorm_backward(int64_t n, int64_t d, const float* dy, const float* x, const float* w,
                                         const float* rstd, float* dx, int accumulate, float* dw) {
  if (n < 0 || d <= 0) return dn_fail(DN_INVALID_ARGUMENT, "dn_rmsnorm_backward: bad shape n=%lld d=%lld", (long long)n, (long long)d);
  const int64_t chunks = (n + kRowChunk - 1) / kRowChunk;
  std::vector<float> partial((size_t)(chunks * d), 0.0f);
#pragma omp parallel for schedule(static) if (n * d > 16384)
  for (int64_t c = 0; c < chunks; ++c) {
    float* pw = partial.data() + c * d;
    const int64_t r1 = std::min(n, (c + 1) * kRowChunk);
    for (int64_t r = c * kRowChunk; r < r1; ++r) {
      const float* xr = x + r * d;
      const float* gr = dy + r * d;
      float* dxr = dx + r * d;
      const float s = rstd[r];
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int64_t i = 0; i < d; ++i) dot += gr[i] * w[i] * xr[i];
      const float k = s * s * s * dot / (float)d;
      if (accumulate) {
#pragma omp simd
        for (int64_t i = 0; i < d; ++i) dxr[i] += s * gr[i] * w[i] - xr[i] * k;
      } else {
#pragma omp simd
        for (int64_t i = 0; i < d; ++i) dxr[i] = s * gr[i] * w[i] - xr[i] * k;
      }
#pragma omp simd
      for (int64_t i = 0; i < d; ++i) pw[i] += gr[i] * xr[i] * s;
    }
  }
  for (int64_t c = 0; c < chunks; ++c) {
    const float* pw = partial.data() + c * d;
    for (int64_t i = 0; i < d; ++i) dw[i] += pw[i];
  }
  return DN_OK;
}
