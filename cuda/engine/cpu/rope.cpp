// Rotate-half RoPE in place on rows [B·T × nh·hd] (row stride ld): pairs (i, i + hd/2) of each head rotate by
// pos · theta^(−2i/hd), from precomputed cos/sin tables [T_max × hd/2] (dn_engine.h).
#include <omp.h>

#include "engine/dn_engine.h"

extern "C" dn_status dn_rope_apply(int64_t B, int64_t T, int64_t nh, int64_t hd, const float* cos_t,
                                   const float* sin_t, float* x, int64_t ld, int inverse) {
  if (hd % 2 != 0) return dn_fail(DN_INVALID_ARGUMENT, "dn_rope_apply: head dim %lld is odd", (long long)hd);
  const int64_t half = hd / 2, rows = B * T, width = nh * hd;
  if (ld < width) return dn_fail(DN_INVALID_ARGUMENT, "dn_rope_apply: row stride %lld < %lld", (long long)ld, (long long)width);
  const float sign = inverse ? -1.0f : 1.0f;
#pragma omp parallel for schedule(static) if (rows * width > 16384)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t pos = r % T;
    const float* c = cos_t + pos * half;
    const float* s = sin_t + pos * half;
    for (int64_t hh = 0; hh < nh; ++hh) {
      float* x1 = x + r * ld + hh * hd;
      float* x2 = x1 + half;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const float a = x1[i], b = x2[i], si = sign * s[i];
        x1[i] = a * c[i] - b * si;
        x2[i] = b * c[i] + a * si;
      }
    }
  }
  return DN_OK;
}
