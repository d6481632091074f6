// Internal helper for the engine kernels: a vectorizable expf (Cephes polynomial, ~2 ulp on the
// range used; libm's expf is a scalar call that no loop vectorizes).
#pragma once
#include <cmath>
#include <cstdint>

inline float dn_fast_exp(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  // Round to nearest through an integer conversion: std::floor does not vectorize without -ffast-math.
  const float t = x * 1.44269504088896341f;
  const int32_t ni = (int32_t)(t + (t >= 0.0f ? 0.5f : -0.5f));
  const float n = (float)ni;
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t bits = (ni + 127) << 23;
  return y * __builtin_bit_cast(float, bits);
}
