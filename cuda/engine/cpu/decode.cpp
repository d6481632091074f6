// Incremental decoding with a KV cache (dn_engine.h dn_model_prefill / dn_model_decode): prefill runs the full
// forward on the prompts and keeps every layer's rotated K and V; each decode step runs the B new rows through the
// layers (GEMMs on B rows, RoPE at the step's position) and attends over the cached positions, so a token costs
// O(T) attention instead of a forward over the whole prefix. Attention follows attention.cpp's arithmetic (serial
// GEMM for q·Kᵀ and P·V, dn_fast_exp softmax); one thread owns each (sequence, head): same bits at any thread count.
#pragma GCC optimize("no-trapping-math")
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/dn_simd.h"
#include "engine/cpu/engine_buffers.h"
#include "engine/cpu/model_state.h"
#include "engine/dn_engine.h"
#include "gemm/dn_gemm.h"

using namespace dn_engine;

namespace {
// att [B × h·hd] for queries q (row stride qkvw) at position len−1 over cached K, V [B × kv_max × kw] of one layer.
dn_status decode_attention(const dn_model* m, int64_t B, int64_t len, const float* q, const float* K, const float* V,
                           float* scores, float* att) {
  const int64_t h = m->h, hd = m->hd, kw = m->kw, qw = m->qw, rep = m->h / m->g, S = m->kv_max;
  const float scale = 1.0f / std::sqrt((float)hd);
  dn_status status = DN_OK;
#pragma omp parallel for schedule(static) if (B * h * len * hd > 16384)
  for (int64_t task = 0; task < B * h; ++task) {
    const int64_t b = task / h, hh = task % h, kh = hh / rep;
    const float* Q = q + b * m->qkvw + hh * hd;
    const float* Kb = K + b * S * kw + kh * hd;
    const float* Vb = V + b * S * kw + kh * hd;
    float* p = scores + task * S;
    dn_status st = dn_sgemm_serial(0, 1, 1, len, hd, scale, Q, m->qkvw, Kb, kw, 0.0f, p, len);
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int64_t u = 0; u < len; ++u) mx = std::max(mx, p[u]);
    float z = 0.0f;
#pragma omp simd reduction(+ : z)
    for (int64_t u = 0; u < len; ++u) {
      p[u] = dn_fast_exp(p[u] - mx);
      z += p[u];
    }
    const float inv = 1.0f / z;
#pragma omp simd
    for (int64_t u = 0; u < len; ++u) p[u] *= inv;
    if (st == DN_OK) st = dn_sgemm_serial(0, 0, 1, hd, len, 1.0f, p, len, Vb, kw, 0.0f, att + b * qw + hh * hd, qw);
    if (st != DN_OK) {
#pragma omp critical
      status = st;
    }
  }
  return status;
}
}  // namespace

extern "C" dn_status dn_model_prefill(dn_model* m, const float* P, const int32_t* tokens, int64_t B, int64_t T,
                                      int64_t max_len, float* out) {
  if (max_len < T || max_len > m->c.context_length)
    return dn_fail(DN_INVALID_ARGUMENT, "dn_model_prefill: max_len=%lld must be in [T=%lld, context %d]", (long long)max_len, (long long)T, m->c.context_length);
  m->kv_B = m->kv_len = 0;
  DN_TRY(dn_model_forward(m, P, tokens, B, T, out));
  const int64_t L = m->L, N = B * T, kw = m->kw, qkvw = m->qkvw, qw = m->qw;
  float* kc = ensure(m->kc, L * B * max_len * kw);
  float* vc = ensure(m->vc, L * B * max_len * kw);
  {
    Timer t(&m->secs[DN_OP_ATTENTION]);
    for (int64_t l = 0; l < L; ++l) {
      const float* ql = m->qkv.data() + l * N * qkvw;
      for (int64_t n = 0; n < N; ++n) {
        const int64_t b = n / T, pos = n % T, dst = ((l * B + b) * max_len + pos) * kw;
        std::memcpy(kc + dst, ql + n * qkvw + qw, sizeof(float) * kw);
        std::memcpy(vc + dst, ql + n * qkvw + qw + kw, sizeof(float) * kw);
      }
    }
  }
  m->kv_B = B;
  m->kv_max = max_len;
  m->kv_len = T;
  return DN_OK;
}

extern "C" dn_status dn_model_decode(dn_model* m, const float* P, const int32_t* tokens, float* out) {
  const int64_t B = m->kv_B, pos = m->kv_len;
  if (B < 1) return dn_fail(DN_INVALID_ARGUMENT, "dn_model_decode: no prefill to continue");
  if (pos >= m->kv_max)
    return dn_fail(DN_INVALID_ARGUMENT, "dn_model_decode: the cache holds %lld positions, all filled", (long long)m->kv_max);
  for (int64_t b = 0; b < B; ++b) {
    if (tokens[b] < 0 || tokens[b] >= m->V)
      return dn_fail(DN_INVALID_ARGUMENT, "dn_model_decode: token %d of sequence %lld is outside the vocabulary (%lld)", tokens[b], (long long)b, (long long)m->V);
  }
  // The MoE layers' saved state now belongs to this step, not to the last forward.
  m->have_forward = false;
  const int64_t d = m->d, f = m->f, L = m->L, h = m->h, g = m->g, hd = m->hd, qkvw = m->qkvw, qw = m->qw, kw = m->kw;
  const int64_t S = m->kv_max, half = hd / 2;
  float* x = ensure(m->s_x, B * d);
  float* h1 = ensure(m->s_h1, B * d);
  float* qkv = ensure(m->s_qkv, B * qkvw);
  float* scores = ensure(m->s_scores, B * h * S);
  float* att = ensure(m->s_att, B * qw);
  float* xm = ensure(m->s_xm, B * d);
  float* h2 = ensure(m->s_h2, B * d);
  float* au = ensure(m->s_au, B * 2 * f);
  float* mm = ensure(m->s_m, B * f);
  float* r = ensure(m->s_r, B);
  double* T = m->secs;
  {
    Timer t(&T[DN_OP_EMBED]);
    for (int64_t b = 0; b < B; ++b) std::memcpy(x + b * d, P + m->embed + (int64_t)tokens[b] * d, sizeof(float) * d);
  }
  const float* cos_p = m->cos_t.data() + pos * half;
  const float* sin_p = m->sin_t.data() + pos * half;
  for (int64_t l = 0; l < L; ++l) {
    const LayerOffsets& o = m->lo[(size_t)l];
    float* Kl = m->kc.data() + l * B * S * kw;
    float* Vl = m->vc.data() + l * B * S * kw;
    { Timer t(&T[DN_OP_NORM]); DN_TRY(dn_rmsnorm_forward(B, d, x, P + o.attn_norm, m->c.norm_eps, h1, r)); }
    { Timer t(&T[DN_OP_GEMM]); DN_TRY(linear(h1, B, d, P + o.wq, qkvw, 0.0f, qkv)); }
    {
      // Every row sits at position pos: tables from row pos, one position per "sequence".
      Timer t(&T[DN_OP_ROPE]);
      DN_TRY(dn_rope_apply(B, 1, h, hd, cos_p, sin_p, qkv, qkvw, 0));
      DN_TRY(dn_rope_apply(B, 1, g, hd, cos_p, sin_p, qkv + qw, qkvw, 0));
    }
    {
      Timer t(&T[DN_OP_ATTENTION]);
      for (int64_t b = 0; b < B; ++b) {
        std::memcpy(Kl + (b * S + pos) * kw, qkv + b * qkvw + qw, sizeof(float) * kw);
        std::memcpy(Vl + (b * S + pos) * kw, qkv + b * qkvw + qw + kw, sizeof(float) * kw);
      }
      DN_TRY(decode_attention(m, B, pos + 1, qkv, Kl, Vl, scores, att));
    }
    {
      Timer t(&T[DN_OP_GEMM]);
      std::memcpy(xm, x, sizeof(float) * B * d);
      DN_TRY(linear(att, B, qw, P + o.wo, d, 1.0f, xm));
    }
    { Timer t(&T[DN_OP_NORM]); DN_TRY(dn_rmsnorm_forward(B, d, xm, P + o.ffn_norm, m->c.norm_eps, h2, r)); }
    // x becomes the layer's output: xm + FFN(h2).
    std::memcpy(x, xm, sizeof(float) * B * d);
    if (o.moe) {
      DN_TRY(dn_moe_forward(o.moe, P, &o.mo, B, h2, x));
      continue;
    }
    { Timer t(&T[DN_OP_GEMM]); DN_TRY(linear(h2, B, d, P + o.w1, 2 * f, 0.0f, au)); }
    { Timer t(&T[DN_OP_SWIGLU]); DN_TRY(dn_swiglu_forward(B, f, au, mm)); }
    { Timer t(&T[DN_OP_GEMM]); DN_TRY(linear(mm, B, f, P + o.w2, d, 1.0f, x)); }
  }
  { Timer t(&T[DN_OP_NORM]); DN_TRY(dn_rmsnorm_forward(B, d, x, P + m->norm, m->c.norm_eps, out, r)); }
  m->kv_len = pos + 1;
  return DN_OK;
}
