// Register-tiled causal attention (attention_tiled.cpp), the fast path of dn_attention_forward/backward for head
// dims that fill whole SIMD registers; same shapes and strides as those two (dn_engine.h).
#pragma once
#include <cstdint>

namespace dn_engine {
// False when this build (no AVX2/AVX-512) or this head dim has no tiled kernel: the caller then runs the GEMM form.
bool attention_tiled_supported(int64_t hd);
void attention_forward_tiled(int64_t B, int64_t T, int64_t h, int64_t g, int64_t hd, const float* q, int64_t ldq,
                             const float* k, const float* v, int64_t ldkv, float* probs, float* out);
void attention_backward_tiled(int64_t B, int64_t T, int64_t h, int64_t g, int64_t hd, const float* dout,
                              const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv,
                              const float* probs, float* dscores, float* dq, float* dk, float* dv);
}  // namespace dn_engine
