// The decoder engine's state shared by model.cpp (forward, backward) and decode.cpp (KV-cache decoding): offsets of
// every tensor in the flat parameter buffer, activation buffers kept from forward, and the KV cache.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/cpu/engine_buffers.h"
#include "engine/dn_engine.h"
#include "gemm/dn_gemm.h"

namespace dn_engine {
struct LayerOffsets {
  int64_t attn_norm, wq, wk, wv, wo, ffn_norm, w1, w3, w2;
  // MoE layers: their FFN tensors (w1, w3, w2 are then −1) and their index among the dense layers otherwise.
  dn_moe* moe = nullptr;
  dn_moe_offsets mo{-1, -1, -1, -1, -1, -1};
  int64_t dense = -1;
};

// y[N×out] (+)= x[N×in] · Wᵀ, W [out×in].
inline dn_status linear(const float* x, int64_t n, int64_t in, const float* w, int64_t out, float beta, float* y) {
  return dn_sgemm(0, 1, n, out, in, 1.0f, x, in, w, in, beta, y, out);
}
// y[n×out] = res + x[n×in] · W[out×in]ᵀ: a residual connection added as the product is stored (no copy of res).
inline dn_status linear_add(const float* x, int64_t n, int64_t in, const float* w, int64_t out, const float* res,
                            float* y) {
  return dn_sgemm_add(0, 1, n, out, in, 1.0f, x, in, w, in, res, out, y, out);
}
}  // namespace dn_engine

struct dn_model {
  dn_model_config c;
  int64_t d, h, g, hd, f, V, L, qw, kw, qkvw;
  int64_t embed, norm, lm_head, total;
  std::vector<dn_engine::LayerOffsets> lo;  // wq|wk|wv and w1|w3 are adjacent: fused projections rely on it
  int64_t n_dense = 0;           // dense FFN layers (the au and m buffers hold only theirs)
  std::vector<dn_moe*> moes;     // the MoE layers' FFNs, in layer order
  dn_engine::Buf cos_t, sin_t;
  // Forward state.
  int64_t B = 0, T = 0;
  bool have_forward = false;
  std::vector<int32_t> tokens;
  // qkv rows [q | k | v] (one GEMM: wq, wk, wv are adjacent in the layout); au rows [a | u] (w1, w3).
  dn_engine::Buf res, xmid, r1, h1, qkv, probs, att, r2, h2, au, m, rf;
  // Backward scratch.
  dn_engine::Buf dres, dxmid, dh, datt, dqkv, dscores, dm, dau;
  // KV cache (dn_model_prefill / dn_model_decode): rotated K and V [L × kv_B × kv_max × g·hd], kv_len positions
  // filled per sequence; decode scratch for the kv_B rows of one step.
  int64_t kv_B = 0, kv_max = 0, kv_len = 0;
  dn_engine::Buf kc, vc, s_x, s_h1, s_qkv, s_scores, s_att, s_xm, s_h2, s_au, s_m, s_r;
  double secs[DN_OP_COUNT] = {0};
  ~dn_model() {
    for (dn_moe* x : moes) dn_moe_destroy(x);
  }
};

