// Causal self-attention with grouped KV heads (dn_model.h): q [N × h·hd], k, v [N × g·hd] (strided), query head
// hh reads KV head hh / (h/g). Forward keeps the softmax rows; backward runs two passes, one over query
// rows (dS and dq) and one over key rows (dk, dv), so every output element has one writer: no atomics,
// a fixed summation order, the same bits for any thread count.
#include <omp.h>

#include <cmath>

#include "dn_model.h"

namespace {
inline float dot(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}
inline void axpy(float alpha, const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}
}  // namespace

extern "C" dn_status dn_attention_forward(int64_t B, int64_t T, int64_t h, int64_t g, int64_t hd, const float* q,
                                          int64_t ldq, const float* k, const float* v, int64_t ldkv, float* probs,
                                          float* out) {
  if (g <= 0 || h % g != 0) return dn_fail(DN_INVALID_ARGUMENT, "dn_attention_forward: %lld KV heads do not divide %lld heads", (long long)g, (long long)h);
  const int64_t rep = h / g, qw = h * hd;
  const float scale = 1.0f / std::sqrt((float)hd);
#pragma omp parallel for collapse(3) schedule(dynamic, 8)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t hh = 0; hh < h; ++hh) {
      for (int64_t t = 0; t < T; ++t) {
        const int64_t kh = hh / rep;
        const float* qt = q + (b * T + t) * ldq + hh * hd;
        float* p = probs + ((b * h + hh) * T + t) * T;
        float mx = -INFINITY;
        for (int64_t u = 0; u <= t; ++u) {
          p[u] = dot(qt, k + (b * T + u) * ldkv + kh * hd, hd) * scale;
          mx = p[u] > mx ? p[u] : mx;
        }
        float z = 0.0f;
        for (int64_t u = 0; u <= t; ++u) {
          p[u] = std::exp(p[u] - mx);
          z += p[u];
        }
        const float inv = 1.0f / z;
        float* o = out + (b * T + t) * qw + hh * hd;
        for (int64_t i = 0; i < hd; ++i) o[i] = 0.0f;
        for (int64_t u = 0; u <= t; ++u) {
          p[u] *= inv;
          axpy(p[u], v + (b * T + u) * ldkv + kh * hd, o, hd);
        }
        for (int64_t u = t + 1; u < T; ++u) p[u] = 0.0f;
      }
    }
  }
  return DN_OK;
}

extern "C" dn_status dn_attention_backward(int64_t B, int64_t T, int64_t h, int64_t g, int64_t hd,
                                           const float* dout, const float* q, int64_t ldq, const float* k,
                                           const float* v, int64_t ldkv, const float* probs, float* dscores,
                                           float* dq, float* dk, float* dv) {
  if (g <= 0 || h % g != 0) return dn_fail(DN_INVALID_ARGUMENT, "dn_attention_backward: %lld KV heads do not divide %lld heads", (long long)g, (long long)h);
  const int64_t rep = h / g, qw = h * hd;
  const float scale = 1.0f / std::sqrt((float)hd);
  // Pass 1, per query row t: dP[u] = dout_t · v_u, dS = P ⊙ (dP − Σ P dP) · scale, dq_t = Σ_u dS[u] k_u.
#pragma omp parallel for collapse(3) schedule(dynamic, 8)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t hh = 0; hh < h; ++hh) {
      for (int64_t t = 0; t < T; ++t) {
        const int64_t kh = hh / rep;
        const float* go = dout + (b * T + t) * qw + hh * hd;
        const float* p = probs + ((b * h + hh) * T + t) * T;
        float* ds = dscores + ((b * h + hh) * T + t) * T;
        float sum = 0.0f;
        for (int64_t u = 0; u <= t; ++u) {
          ds[u] = dot(go, v + (b * T + u) * ldkv + kh * hd, hd);
          sum += p[u] * ds[u];
        }
        float* dqt = dq + (b * T + t) * ldq + hh * hd;
        for (int64_t i = 0; i < hd; ++i) dqt[i] = 0.0f;
        for (int64_t u = 0; u <= t; ++u) {
          ds[u] = p[u] * (ds[u] - sum) * scale;
          axpy(ds[u], k + (b * T + u) * ldkv + kh * hd, dqt, hd);
        }
      }
    }
  }
  // Pass 2, per key row u of KV head kh: dk_u = Σ_{heads of kh} Σ_{t≥u} dS[t,u] q_t, dv_u = Σ P[t,u] dout_t.
#pragma omp parallel for collapse(3) schedule(dynamic, 8)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t kh = 0; kh < g; ++kh) {
      for (int64_t u = 0; u < T; ++u) {
        float* dku = dk + (b * T + u) * ldkv + kh * hd;
        float* dvu = dv + (b * T + u) * ldkv + kh * hd;
        for (int64_t i = 0; i < hd; ++i) dku[i] = dvu[i] = 0.0f;
        for (int64_t hh = kh * rep; hh < (kh + 1) * rep; ++hh) {
          const float* pcol = probs + (b * h + hh) * T * T + u;
          const float* dcol = dscores + (b * h + hh) * T * T + u;
          for (int64_t t = u; t < T; ++t) {
            axpy(dcol[t * T], q + (b * T + t) * ldq + hh * hd, dku, hd);
            axpy(pcol[t * T], dout + (b * T + t) * qw + hh * hd, dvu, hd);
          }
        }
      }
    }
  }
  return DN_OK;
}
