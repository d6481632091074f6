// Causal self-attention with grouped KV heads (dn_engine.h): q [N × h·hd], k, v [N × g·hd] (strided), query
// head hh reads KV head hh / (h/g). Per (sequence, head) the products are serial GEMMs over 64-row
// blocks that stop at the causal edge: S = q·kᵀ, softmax rows (kept for backward), O = P·v; backward
// dP = dO·vᵀ, dS = P ⊙ (dP − Σ P dP)·scale, dq = dS·k, and dk, dv = dSᵀ·q, Pᵀ·dO summed over the query
// heads of a KV group in head order. One thread owns each output block: no atomics, the same bits for
// any thread count. Head dims of 1–4 SIMD registers take the register-tiled form (attention_tiled.cpp) instead.
// No FP-exception semantics are needed here; without this GCC will not if-convert (and so not
// vectorize) the clamps inside dn_fast_exp.
#pragma GCC optimize("no-trapping-math")
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "common/dn_simd.h"
#include "engine/cpu/attention_tiled.h"
#include "engine/dn_engine.h"
#include "gemm/dn_gemm.h"

namespace {
constexpr int64_t kRowBlock = 64;
}

extern "C" dn_status dn_attention_forward(int64_t B, int64_t T, int64_t h, int64_t g, int64_t hd, const float* q,
                                          int64_t ldq, const float* k, const float* v, int64_t ldkv, float* probs,
                                          float* out) {
  if (g <= 0 || h % g != 0) return dn_fail(DN_INVALID_ARGUMENT, "dn_attention_forward: %lld KV heads do not divide %lld heads", (long long)g, (long long)h);
  if (dn_engine::attention_tiled_supported(hd)) {
    dn_engine::attention_forward_tiled(B, T, h, g, hd, q, ldq, k, v, ldkv, probs, out);
    return DN_OK;
  }
  const int64_t rep = h / g, qw = h * hd;
  const float scale = 1.0f / std::sqrt((float)hd);
  dn_status status = DN_OK;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t task = 0; task < B * h; ++task) {
    const int64_t b = task / h, hh = task % h, kh = hh / rep;
    const float* Q = q + b * T * ldq + hh * hd;
    const float* K = k + b * T * ldkv + kh * hd;
    const float* V = v + b * T * ldkv + kh * hd;
    float* P = probs + task * T * T;
    float* O = out + b * T * qw + hh * hd;
    for (int64_t t0 = 0; t0 < T; t0 += kRowBlock) {
      const int64_t t1 = std::min(T, t0 + kRowBlock), rb = t1 - t0;
      dn_status st = dn_sgemm_serial(0, 1, rb, t1, hd, scale, Q + t0 * ldq, ldq, K, ldkv, 0.0f, P + t0 * T, T);
      for (int64_t t = t0; t < t1; ++t) {
        float* p = P + t * T;
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int64_t u = 0; u <= t; ++u) mx = std::max(mx, p[u]);
        float z = 0.0f;
#pragma omp simd reduction(+ : z)
        for (int64_t u = 0; u <= t; ++u) {
          p[u] = dn_fast_exp(p[u] - mx);
          z += p[u];
        }
        const float inv = 1.0f / z;
#pragma omp simd
        for (int64_t u = 0; u <= t; ++u) p[u] *= inv;
        for (int64_t u = t + 1; u < T; ++u) p[u] = 0.0f;
      }
      if (st == DN_OK) st = dn_sgemm_serial(0, 0, rb, hd, t1, 1.0f, P + t0 * T, T, V, ldkv, 0.0f, O + t0 * qw, qw);
      if (st != DN_OK) {
#pragma omp critical
        status = st;
      }
    }
  }
  return status;
}

extern "C" dn_status dn_attention_backward(int64_t B, int64_t T, int64_t h, int64_t g, int64_t hd,
                                           const float* dout, const float* q, int64_t ldq, const float* k,
                                           const float* v, int64_t ldkv, const float* probs, float* dscores,
                                           float* dq, float* dk, float* dv) {
  if (g <= 0 || h % g != 0) return dn_fail(DN_INVALID_ARGUMENT, "dn_attention_backward: %lld KV heads do not divide %lld heads", (long long)g, (long long)h);
  if (dn_engine::attention_tiled_supported(hd)) {
    dn_engine::attention_backward_tiled(B, T, h, g, hd, dout, q, ldq, k, v, ldkv, probs, dscores, dq, dk, dv);
    return DN_OK;
  }
  const int64_t rep = h / g, qw = h * hd;
  const float scale = 1.0f / std::sqrt((float)hd);
  dn_status status = DN_OK;
  // One task per (sequence, KV head): it owns dk, dv of that head and dq of its query heads.
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t task = 0; task < B * g; ++task) {
    const int64_t b = task / g, kh = task % g;
    const float* K = k + b * T * ldkv + kh * hd;
    const float* V = v + b * T * ldkv + kh * hd;
    float* dK = dk + b * T * ldkv + kh * hd;
    float* dV = dv + b * T * ldkv + kh * hd;
    dn_status st = DN_OK;
    for (int64_t hh = kh * rep; hh < (kh + 1) * rep && st == DN_OK; ++hh) {
      const float* Q = q + b * T * ldq + hh * hd;
      const float* dO = dout + b * T * qw + hh * hd;
      const float* P = probs + (b * h + hh) * T * T;
      float* dS = dscores + (b * h + hh) * T * T;
      float* dQ = dq + b * T * ldq + hh * hd;
      for (int64_t t0 = 0; t0 < T && st == DN_OK; t0 += kRowBlock) {
        const int64_t t1 = std::min(T, t0 + kRowBlock), rb = t1 - t0;
        st = dn_sgemm_serial(0, 1, rb, t1, hd, 1.0f, dO + t0 * qw, qw, V, ldkv, 0.0f, dS + t0 * T, T);
        for (int64_t t = t0; t < t1; ++t) {
          const float* p = P + t * T;
          float* ds = dS + t * T;
          float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
          for (int64_t u = 0; u <= t; ++u) sum += p[u] * ds[u];
#pragma omp simd
          for (int64_t u = 0; u <= t; ++u) ds[u] = p[u] * (ds[u] - sum) * scale;
          for (int64_t u = t + 1; u < T; ++u) ds[u] = 0.0f;
        }
        if (st == DN_OK) st = dn_sgemm_serial(0, 0, rb, hd, t1, 1.0f, dS + t0 * T, T, K, ldkv, 0.0f, dQ + t0 * ldq, ldq);
      }
      // Key block [u0, u1) only sees query rows t ≥ u0 (dS and P are zero above the diagonal).
      const float beta = hh == kh * rep ? 0.0f : 1.0f;
      for (int64_t u0 = 0; u0 < T && st == DN_OK; u0 += kRowBlock) {
        const int64_t ub = std::min(T, u0 + kRowBlock) - u0;
        st = dn_sgemm_serial(1, 0, ub, hd, T - u0, 1.0f, dS + u0 * T + u0, T, Q + u0 * ldq, ldq, beta, dK + u0 * ldkv, ldkv);
        if (st == DN_OK) st = dn_sgemm_serial(1, 0, ub, hd, T - u0, 1.0f, P + u0 * T + u0, T, dO + u0 * qw, qw, beta, dV + u0 * ldkv, ldkv);
      }
    }
    if (st != DN_OK) {
#pragma omp critical
      status = st;
    }
  }
  return status;
}
