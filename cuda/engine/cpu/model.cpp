// The decoder engine (dn_engine.h): offsets of every tensor in the flat parameter buffer, activation
// buffers kept from forward for backward (grown to the largest batch, then reused), and the forward and
// backward passes as a sequence of GEMMs and the kernels of this folder; MoE layers run moe.cpp. Shapes: N = B·T rows.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <vector>

#include "gemm/dn_gemm.h"
#include "engine/dn_engine.h"
#include "engine/cpu/engine_buffers.h"
#include "engine/cpu/model_state.h"

using dn_engine::Buf;
using dn_engine::ensure;
using dn_engine::LayerOffsets;
using dn_engine::linear;
using dn_engine::linear_add;
using dn_engine::Timer;

namespace {
// dx[N×in] (+)= dy · W and dW[out×in] += dyᵀ · x.
dn_status linear_back(const float* dy, const float* x, int64_t n, int64_t in, const float* w, int64_t out,
                      float dx_beta, float* dx, float* dw) {
  dn_status st = dn_sgemm(0, 0, n, in, out, 1.0f, dy, out, w, in, dx_beta, dx, in);
  if (st != DN_OK) return st;
  return dn_sgemm(1, 0, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);
}
}  // namespace

extern "C" dn_status dn_model_create(const dn_model_config* cfg, dn_model** out) {
  const dn_model_config& c = *cfg;
  if (c.vocab_size < 2 || c.d_model < 1 || c.n_layers < 1 || c.n_heads < 1 || c.n_kv_heads < 1 || c.ffn_dim < 1 ||
      c.context_length < 1 || c.d_model % c.n_heads != 0 || c.n_heads % c.n_kv_heads != 0 ||
      (c.d_model / c.n_heads) % 2 != 0 || !(c.rope_theta > 0) || !(c.norm_eps > 0)) {
    return dn_fail(DN_INVALID_ARGUMENT, "dn_model_create: invalid model config (d=%d heads=%d kv=%d)", c.d_model, c.n_heads, c.n_kv_heads);
  }
  if (c.moe_every < 0 || c.moe_every > c.n_layers)
    return dn_fail(DN_INVALID_ARGUMENT, "dn_model_create: moe_every=%d must be 0 (dense) or 1..n_layers=%d", c.moe_every, c.n_layers);
  dn_model* m = new (std::nothrow) dn_model();
  if (!m) return dn_fail(DN_OUT_OF_MEMORY, "dn_model_create: out of memory");
  m->c = c;
  m->d = c.d_model;
  m->h = c.n_heads;
  m->g = c.n_kv_heads;
  m->hd = c.d_model / c.n_heads;
  m->f = c.ffn_dim;
  m->V = c.vocab_size;
  m->L = c.n_layers;
  m->qw = m->h * m->hd;
  m->kw = m->g * m->hd;
  m->qkvw = m->qw + 2 * m->kw;
  int64_t off = 0;
  m->embed = off;
  off += m->V * m->d;
  for (int64_t l = 0; l < m->L; ++l) {
    LayerOffsets o;
    o.attn_norm = off; off += m->d;
    o.wq = off; off += m->qw * m->d;
    o.wk = off; off += m->kw * m->d;
    o.wv = off; off += m->kw * m->d;
    o.wo = off; off += m->d * m->qw;
    o.ffn_norm = off; off += m->d;
    if (c.moe_every > 0 && (l + 1) % c.moe_every == 0) {
      // The order of moeLayerShapes (src/core/moe.ts).
      const int64_t E = c.moe.experts, F = c.moe.expert_ffn, SF = c.moe.shared_ffn;
      o.w1 = o.w3 = o.w2 = -1;
      o.mo.router = off; off += E * m->d;
      if (c.moe.balance == 1) { o.mo.router_bias = off; off += E; }
      if (SF > 0) { o.mo.shared_w1 = off; off += 2 * SF * m->d; o.mo.shared_w2 = off; off += m->d * SF; }
      o.mo.gate_up = off; off += E * 2 * F * m->d;
      o.mo.down = off; off += E * m->d * F;
      dn_status st = dn_moe_create(m->d, &c.moe, &o.moe);
      if (st != DN_OK) {
        delete m;
        return st;
      }
      m->moes.push_back(o.moe);
    } else {
      o.dense = m->n_dense++;
      o.w1 = off; off += m->f * m->d;
      o.w3 = off; off += m->f * m->d;
      o.w2 = off; off += m->d * m->f;
    }
    m->lo.push_back(o);
  }
  m->norm = off;
  off += m->d;
  m->lm_head = c.tie_embeddings ? m->embed : off;
  if (!c.tie_embeddings) off += m->V * m->d;
  m->total = off;
  // Angles in double (as the float64 reference), rounded once.
  const int64_t half = m->hd / 2;
  m->cos_t.resize((size_t)(c.context_length * half));
  m->sin_t.resize((size_t)(c.context_length * half));
  for (int64_t p = 0; p < c.context_length; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const double ang = (double)p * std::pow((double)c.rope_theta, -2.0 * (double)i / (double)m->hd);
      m->cos_t[p * half + i] = (float)std::cos(ang);
      m->sin_t[p * half + i] = (float)std::sin(ang);
    }
  }
  *out = m;
  return DN_OK;
}

extern "C" void dn_model_destroy(dn_model* m) { delete m; }
extern "C" int64_t dn_model_num_params(const dn_model* m) { return m->total; }

extern "C" void dn_model_op_seconds(const dn_model* m, double* out) {
  for (int i = 0; i < DN_OP_COUNT; ++i) out[i] = m->secs[i];
  for (const dn_moe* x : m->moes) {
    double s[DN_OP_COUNT];
    dn_moe_op_seconds(x, s);
    for (int i = 0; i < DN_OP_COUNT; ++i) out[i] += s[i];
  }
}
extern "C" void dn_model_reset_timings(dn_model* m) {
  for (double& s : m->secs) s = 0.0;
  for (dn_moe* x : m->moes) dn_moe_reset_timings(x);
}

extern "C" int32_t dn_model_moe_layers(const dn_model* m) { return (int32_t)m->moes.size(); }

extern "C" dn_status dn_model_moe_stats(const dn_model* m, int32_t i, double* load, double* scalars) {
  if (i < 0 || i >= (int32_t)m->moes.size())
    return dn_fail(DN_INVALID_ARGUMENT, "dn_model_moe_stats: MoE layer %d of %d", i, (int)m->moes.size());
  if (!m->have_forward) return dn_fail(DN_INVALID_ARGUMENT, "dn_model_moe_stats: no forward yet");
  return dn_moe_stats(m->moes[(size_t)i], load, scalars);
}

extern "C" dn_status dn_model_forward(dn_model* m, const float* P, const int32_t* tokens, int64_t B, int64_t T,
                                      float* out) {
  if (B < 1 || T < 1 || T > m->c.context_length)
    return dn_fail(DN_INVALID_ARGUMENT, "dn_model_forward: bad shape B=%lld T=%lld (context %d)", (long long)B, (long long)T, m->c.context_length);
  const int64_t N = B * T, d = m->d, qw = m->qw, kw = m->kw, f = m->f, L = m->L, h = m->h, g = m->g, hd = m->hd;
  const int64_t qkvw = m->qkvw;
  for (int64_t i = 0; i < N; ++i) {
    if (tokens[i] < 0 || tokens[i] >= m->V)
      return dn_fail(DN_INVALID_ARGUMENT, "dn_model_forward: token %d at %lld is outside the vocabulary (%lld)", tokens[i], (long long)i, (long long)m->V);
  }
  m->have_forward = false;
  m->B = B;
  m->T = T;
  m->tokens.assign(tokens, tokens + N);
  float* res = ensure(m->res, (L + 1) * N * d);
  float* xmid = ensure(m->xmid, L * N * d);
  float* r1 = ensure(m->r1, L * N);
  float* h1 = ensure(m->h1, L * N * d);
  float* qkv = ensure(m->qkv, L * N * qkvw);
  float* probs = ensure(m->probs, L * B * h * T * T);
  float* att = ensure(m->att, L * N * qw);
  float* r2 = ensure(m->r2, L * N);
  float* h2 = ensure(m->h2, L * N * d);
  float* au = ensure(m->au, m->n_dense * N * 2 * f);
  float* mm = ensure(m->m, m->n_dense * N * f);
  float* rf = ensure(m->rf, N);
  double* S = m->secs;
  {
    Timer t(&S[DN_OP_EMBED]);
#pragma omp parallel for schedule(static) if (N * d > 16384)
    for (int64_t n = 0; n < N; ++n) std::memcpy(res + n * d, P + m->embed + (int64_t)tokens[n] * d, sizeof(float) * d);
  }
  for (int64_t l = 0; l < L; ++l) {
    const LayerOffsets& o = m->lo[l];
    float* x = res + l * N * d;
    float* xm = xmid + l * N * d;
    float* y = res + (l + 1) * N * d;
    float *h1l = h1 + l * N * d, *ql = qkv + l * N * qkvw, *kl = ql + qw, *vl = ql + qw + kw;
    float *attl = att + l * N * qw, *h2l = h2 + l * N * d;
    float *aul = o.moe ? nullptr : au + o.dense * N * 2 * f, *ml = o.moe ? nullptr : mm + o.dense * N * f;
    { Timer t(&S[DN_OP_NORM]); DN_TRY(dn_rmsnorm_forward(N, d, x, P + o.attn_norm, m->c.norm_eps, h1l, r1 + l * N)); }
    {
      Timer t(&S[DN_OP_GEMM]);
      DN_TRY(linear(h1l, N, d, P + o.wq, qkvw, 0.0f, ql));
    }
    {
      Timer t(&S[DN_OP_ROPE]);
      DN_TRY(dn_rope_apply(B, T, h, hd, m->cos_t.data(), m->sin_t.data(), ql, qkvw, 0));
      DN_TRY(dn_rope_apply(B, T, g, hd, m->cos_t.data(), m->sin_t.data(), kl, qkvw, 0));
    }
    { Timer t(&S[DN_OP_ATTENTION]); DN_TRY(dn_attention_forward(B, T, h, g, hd, ql, qkvw, kl, vl, qkvw, probs + l * B * h * T * T, attl)); }
    { Timer t(&S[DN_OP_GEMM]); DN_TRY(linear_add(attl, N, qw, P + o.wo, d, x, xm)); }
    { Timer t(&S[DN_OP_NORM]); DN_TRY(dn_rmsnorm_forward(N, d, xm, P + o.ffn_norm, m->c.norm_eps, h2l, r2 + l * N)); }
    if (o.moe) {
      { Timer t(&S[DN_OP_EMBED]); std::memcpy(y, xm, sizeof(float) * N * d); }
      DN_TRY(dn_moe_forward(o.moe, P, &o.mo, N, h2l, y));
      continue;
    }
    {
      Timer t(&S[DN_OP_GEMM]);
      DN_TRY(linear(h2l, N, d, P + o.w1, 2 * f, 0.0f, aul));
    }
    { Timer t(&S[DN_OP_SWIGLU]); DN_TRY(dn_swiglu_forward(N, f, aul, ml)); }
    { Timer t(&S[DN_OP_GEMM]); DN_TRY(linear_add(ml, N, f, P + o.w2, d, xm, y)); }
  }
  { Timer t(&S[DN_OP_NORM]); DN_TRY(dn_rmsnorm_forward(N, d, res + L * N * d, P + m->norm, m->c.norm_eps, out, rf)); }
  m->have_forward = true;
  return DN_OK;
}

extern "C" dn_status dn_model_backward(dn_model* m, const float* P, const float* dout, float* G, float aux_weight) {
  if (!m->have_forward) return dn_fail(DN_INVALID_ARGUMENT, "dn_model_backward: no forward to back-propagate");
  const int64_t B = m->B, T = m->T, N = B * T, d = m->d, qw = m->qw, kw = m->kw, f = m->f, L = m->L;
  const int64_t h = m->h, g = m->g, hd = m->hd, qkvw = m->qkvw;
  float* dres = ensure(m->dres, N * d);
  float* dxmid = ensure(m->dxmid, N * d);
  float* dh = ensure(m->dh, N * d);
  float* datt = ensure(m->datt, N * qw);
  float* dqkv = ensure(m->dqkv, N * qkvw);
  float* dscores = ensure(m->dscores, B * h * T * T);
  float* dm = ensure(m->dm, N * f);
  float* dau = ensure(m->dau, N * 2 * f);
  double* S = m->secs;
  const float* res = m->res.data();
  { Timer t(&S[DN_OP_NORM]); DN_TRY(dn_rmsnorm_backward(N, d, dout, res + L * N * d, P + m->norm, m->rf.data(), dres, 0, G + m->norm)); }
  for (int64_t l = L - 1; l >= 0; --l) {
    const LayerOffsets& o = m->lo[l];
    const float* x = res + l * N * d;
    const float* xm = m->xmid.data() + l * N * d;
    const float *h1l = m->h1.data() + l * N * d, *ql = m->qkv.data() + l * N * qkvw, *kl = ql + qw, *vl = ql + qw + kw;
    const float *attl = m->att.data() + l * N * qw, *h2l = m->h2.data() + l * N * d;
    const float* aul = o.moe ? nullptr : m->au.data() + o.dense * N * 2 * f;
    const float* ml = o.moe ? nullptr : m->m.data() + o.dense * N * f;
    const float* pl = m->probs.data() + l * B * h * T * T;
    if (o.moe) {
      DN_TRY(dn_moe_backward(o.moe, P, &o.mo, dres, aux_weight, G, dh));
    } else {
      // res[l+1] = xmid + (silu(a) ⊙ u) · W2ᵀ
      { Timer t(&S[DN_OP_GEMM]); DN_TRY(linear_back(dres, ml, N, f, P + o.w2, d, 0.0f, dm, G + o.w2)); }
      { Timer t(&S[DN_OP_SWIGLU]); DN_TRY(dn_swiglu_backward(N, f, dm, aul, dau)); }
      { Timer t(&S[DN_OP_GEMM]); DN_TRY(linear_back(dau, h2l, N, d, P + o.w1, 2 * f, 0.0f, dh, G + o.w1)); }
    }
    {
      Timer t(&S[DN_OP_NORM]);
      std::memcpy(dxmid, dres, sizeof(float) * N * d);
      DN_TRY(dn_rmsnorm_backward(N, d, dh, xm, P + o.ffn_norm, m->r2.data() + l * N, dxmid, 1, G + o.ffn_norm));
    }
    // xmid = res[l] + att · Woᵀ
    { Timer t(&S[DN_OP_GEMM]); DN_TRY(linear_back(dxmid, attl, N, qw, P + o.wo, d, 0.0f, datt, G + o.wo)); }
    { Timer t(&S[DN_OP_ATTENTION]); DN_TRY(dn_attention_backward(B, T, h, g, hd, datt, ql, qkvw, kl, vl, qkvw, pl, dscores, dqkv, dqkv + qw, dqkv + qw + kw)); }
    {
      Timer t(&S[DN_OP_ROPE]);
      DN_TRY(dn_rope_apply(B, T, h, hd, m->cos_t.data(), m->sin_t.data(), dqkv, qkvw, 1));
      DN_TRY(dn_rope_apply(B, T, g, hd, m->cos_t.data(), m->sin_t.data(), dqkv + qw, qkvw, 1));
    }
    { Timer t(&S[DN_OP_GEMM]); DN_TRY(linear_back(dqkv, h1l, N, d, P + o.wq, qkvw, 0.0f, dh, G + o.wq)); }
    {
      Timer t(&S[DN_OP_NORM]);
      std::swap(dres, dxmid);
      DN_TRY(dn_rmsnorm_backward(N, d, dh, x, P + o.attn_norm, m->r1.data() + l * N, dres, 1, G + o.attn_norm));
    }
  }
  {
    // Scatter-add into the embedding rows: threads own column slices, rows run in order (deterministic).
    Timer t(&S[DN_OP_EMBED]);
    const int32_t* tok = m->tokens.data();
    float* ge = G + m->embed;
    constexpr int64_t kCols = 16;
    const int64_t slices = (d + kCols - 1) / kCols;
#pragma omp parallel for schedule(static) if (N * d > 16384)
    for (int64_t s = 0; s < slices; ++s) {
      const int64_t c0 = s * kCols, c1 = std::min(d, c0 + kCols);
      for (int64_t n = 0; n < N; ++n) {
        float* row = ge + (int64_t)tok[n] * d;
        const float* src = dres + n * d;
        for (int64_t c = c0; c < c1; ++c) row[c] += src[c];
      }
    }
  }
  return DN_OK;
}
