// Mixture-of-experts FFN on CPU (dn_engine.h): route each token to its top-k experts, list every expert's rows
// in token order, one GEMM per expert over its gathered rows, combine per token; backward through the experts,
// the shared SwiGLU, the router weights and the aux balance loss. Shapes: N tokens, d width, E experts, k active,
// F expert width, SF shared width, S = N·k routing slots (slot s = n·k + j is token n's j-th choice).
#pragma GCC optimize("no-trapping-math")
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <vector>

#include "engine/dn_engine.h"
#include "engine/cpu/engine_buffers.h"
#include "gemm/dn_gemm.h"

namespace {
using dn_engine::Buf;
using dn_engine::ensure;
using dn_engine::Timer;
}  // namespace

struct dn_moe {
  dn_moe_config c;
  int64_t d, E, k, F, SF;
  int64_t N = 0;
  bool have_forward = false;
  // Routing of the last forward: logits and normalized affinities p [N×E]; per slot the expert, its weight and
  // its row in the gathered buffers; per gathered row its token and slot; rows of expert e: [off[e], off[e+1]).
  Buf logits, p, w;
  std::vector<int32_t> sel;
  std::vector<int64_t> pos, row_tok, row_slot, off;
  std::vector<double> entropy;
  // Activations: h [N×d] (the input), gathered weighted inputs x [S×d], [a | u] rows au [S×2F], m [S×F],
  // expert outputs y [S×d]; shared [a | u] sau [N×2SF], sm [N×SF].
  Buf h, x, au, m, y, sau, sm;
  // Backward scratch.
  Buf dy, dm, dau, dx, dsm, dsau, dlogits, dw;
  double stats[4] = {0, 0, 0, 0};
  std::vector<double> load;
  double secs[DN_OP_COUNT] = {0};
};

extern "C" dn_status dn_moe_create(int64_t d, const dn_moe_config* cfg, dn_moe** out) {
  const dn_moe_config& c = *cfg;
  if (d < 1 || c.experts < 1 || c.active < 1 || c.active > c.experts || c.expert_ffn < 1 || c.shared_ffn < 0 ||
      (c.router != 0 && c.router != 1) || (c.balance != 0 && c.balance != 1) || !(c.coef >= 0) || !std::isfinite(c.coef)) {
    return dn_fail(DN_INVALID_ARGUMENT, "dn_moe_create: invalid MoE config (experts=%d active=%d ffn=%d shared=%d router=%d balance=%d)",
                   c.experts, c.active, c.expert_ffn, c.shared_ffn, c.router, c.balance);
  }
  dn_moe* m = new (std::nothrow) dn_moe();
  if (!m) return dn_fail(DN_OUT_OF_MEMORY, "dn_moe_create: out of memory");
  m->c = c;
  m->d = d;
  m->E = c.experts;
  m->k = c.active;
  m->F = c.expert_ffn;
  m->SF = c.shared_ffn;
  m->off.assign((size_t)m->E + 1, 0);
  m->load.assign((size_t)m->E, 0.0);
  *out = m;
  return DN_OK;
}

extern "C" void dn_moe_destroy(dn_moe* m) { delete m; }

extern "C" void dn_moe_op_seconds(const dn_moe* m, double* out) {
  for (int i = 0; i < DN_OP_COUNT; ++i) out[i] = m->secs[i];
}
extern "C" void dn_moe_reset_timings(dn_moe* m) {
  for (double& s : m->secs) s = 0.0;
}

namespace {
inline double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// One token's routing, in double from its float logits: normalized affinities p, the k largest selection keys
// (affinity + bias; ties to the lower index) in key order, their weights, and the entropy of p.
void route_token(const dn_moe& m, const float* logits, const float* bias, double* aff, float* p, int32_t* sel,
                 float* w, double* entropy) {
  const int64_t E = m.E, k = m.k;
  double z = 0.0;
  if (m.c.router == 0) {
    for (int64_t e = 0; e < E; ++e) z += aff[e] = sigmoid(logits[e]);
    for (int64_t e = 0; e < E; ++e) p[e] = (float)(aff[e] / z);
  } else {
    double mx = logits[0];
    for (int64_t e = 1; e < E; ++e) mx = std::max(mx, (double)logits[e]);
    for (int64_t e = 0; e < E; ++e) z += aff[e] = std::exp((double)logits[e] - mx);
    for (int64_t e = 0; e < E; ++e) p[e] = (float)(aff[e] /= z);
  }
  double ent = 0.0;
  for (int64_t e = 0; e < E; ++e) {
    const double pe = m.c.router == 0 ? aff[e] / z : aff[e];
    if (pe > 0) ent -= pe * std::log(pe);
  }
  *entropy = ent;
  for (int64_t j = 0; j < k; ++j) {
    int64_t best = -1;
    double best_key = 0.0;
    for (int64_t e = 0; e < E; ++e) {
      bool taken = false;
      for (int64_t i = 0; i < j; ++i) taken |= sel[i] == e;
      if (taken) continue;
      const double key = aff[e] + (bias ? (double)bias[e] : 0.0);
      if (best < 0 || key > best_key) {
        best = e;
        best_key = key;
      }
    }
    sel[j] = (int32_t)best;
  }
  if (m.c.router == 0) {
    for (int64_t j = 0; j < k; ++j) w[j] = (float)sigmoid(logits[sel[j]]);
  } else {
    double mx = logits[sel[0]], zs = 0.0;
    for (int64_t j = 1; j < k; ++j) mx = std::max(mx, (double)logits[sel[j]]);
    for (int64_t j = 0; j < k; ++j) zs += std::exp((double)logits[sel[j]] - mx);
    for (int64_t j = 0; j < k; ++j) w[j] = (float)(std::exp((double)logits[sel[j]] - mx) / zs);
  }
}

// C[M×N] = op(A)·op(B) (+ C): dn_sgemm, or dn_sgemm_serial inside a parallel loop over experts (same bits).
dn_status gemm(bool serial, int ta, int tb, int64_t M, int64_t Nn, int64_t K, const float* A, int64_t lda, const float* B,
               int64_t ldb, float beta, float* C, int64_t ldc) {
  return serial ? dn_sgemm_serial(ta, tb, M, Nn, K, 1.0f, A, lda, B, ldb, beta, C, ldc)
                : dn_sgemm(ta, tb, M, Nn, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

// Runs fn(e, r0, cnt, serial) for every expert with rows. With at least as many such experts as threads, the
// experts run in parallel, each on one thread with serial GEMMs (one fork per phase instead of one per GEMM: on
// shared cores a descheduled thread stalls every join); otherwise one after the other, each GEMM parallel inside.
// Every expert writes only its own rows and weight gradients, and serial and parallel GEMMs give the same bits, so
// the result does not depend on the thread count.
template <class Fn>
dn_status each_expert(const dn_moe& m, Fn fn) {
  std::vector<int64_t> busy;
  for (int64_t e = 0; e < m.E; ++e)
    if (m.off[e + 1] > m.off[e]) busy.push_back(e);
  const int threads = omp_get_max_threads();
  if (threads > 1 && (int)busy.size() >= threads) {
    std::vector<dn_status> st(busy.size(), DN_OK);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < (int64_t)busy.size(); ++i) {
      const int64_t e = busy[i];
      st[i] = fn(e, m.off[e], m.off[e + 1] - m.off[e], true);
    }
    for (dn_status x : st)
      if (x != DN_OK) return x;
    return DN_OK;
  }
  for (int64_t e : busy) DN_TRY(fn(e, m.off[e], m.off[e + 1] - m.off[e], false));
  return DN_OK;
}

bool bad_offsets(const dn_moe& m, const dn_moe_offsets* o) {
  return o->router < 0 || o->gate_up < 0 || o->down < 0 || (m.c.balance == 1 && o->router_bias < 0) ||
         (m.SF > 0 && (o->shared_w1 < 0 || o->shared_w2 < 0));
}
}  // namespace

extern "C" dn_status dn_moe_forward(dn_moe* m, const float* P, const dn_moe_offsets* o, int64_t N, const float* hin,
                                    float* out) {
  if (N < 1) return dn_fail(DN_INVALID_ARGUMENT, "dn_moe_forward: N=%lld must be positive", (long long)N);
  if (bad_offsets(*m, o)) return dn_fail(DN_INVALID_ARGUMENT, "dn_moe_forward: a tensor offset is missing");
  const int64_t d = m->d, E = m->E, k = m->k, F = m->F, SF = m->SF, S = N * k;
  m->have_forward = false;
  m->N = N;
  float* h = ensure(m->h, N * d);
  std::memcpy(h, hin, sizeof(float) * N * d);
  float* logits = ensure(m->logits, N * E);
  float* p = ensure(m->p, N * E);
  float* w = ensure(m->w, S);
  if ((int64_t)m->sel.size() < S) {
    m->sel.resize((size_t)S);
    m->pos.resize((size_t)S);
    m->row_tok.resize((size_t)S);
    m->row_slot.resize((size_t)S);
  }
  if ((int64_t)m->entropy.size() < N) m->entropy.resize((size_t)N);
  float* x = ensure(m->x, S * d);
  float* au = ensure(m->au, S * 2 * F);
  float* mm = ensure(m->m, S * F);
  float* y = ensure(m->y, S * d);
  double* secs = m->secs;
  const float* bias = m->c.balance == 1 ? P + o->router_bias : nullptr;
  {
    Timer t(&secs[DN_OP_ROUTE]);
    DN_TRY(dn_sgemm(0, 1, N, E, d, 1.0f, h, d, P + o->router, d, 0.0f, logits, E));
#pragma omp parallel if (N * E > 4096)
    {
      std::vector<double> aff((size_t)E);
#pragma omp for schedule(static)
      for (int64_t n = 0; n < N; ++n) {
        route_token(*m, logits + n * E, bias, aff.data(), p + n * E, m->sel.data() + n * k, w + n * k,
                    m->entropy.data() + n);
      }
    }
    // Per-expert row lists by a counting sort over the slots in order: within an expert, rows follow the tokens.
    std::vector<int64_t>& off = m->off;
    std::fill(off.begin(), off.end(), 0);
    for (int64_t s = 0; s < S; ++s) off[m->sel[s] + 1] += 1;
    for (int64_t e = 0; e < E; ++e) off[e + 1] += off[e];
    std::vector<int64_t> cursor(off.begin(), off.end() - 1);
    for (int64_t s = 0; s < S; ++s) {
      const int64_t r = cursor[m->sel[s]]++;
      m->pos[s] = r;
      m->row_tok[r] = s / k;
      m->row_slot[r] = s;
    }
    // Statistics in a fixed order: loads, mean entropy, balance E·Σ f·P, aux loss.
    double ent = 0.0, balance = 0.0;
    for (int64_t n = 0; n < N; ++n) ent += m->entropy[n];
    for (int64_t e = 0; e < E; ++e) {
      double pe = 0.0;
      for (int64_t n = 0; n < N; ++n) pe += p[n * E + e];
      m->load[e] = (double)(off[e + 1] - off[e]);
      balance += (m->load[e] / (double)S) * (pe / (double)N);
    }
    balance *= (double)E;
    m->stats[0] = (double)N;
    m->stats[1] = ent / (double)N;
    m->stats[2] = balance;
    m->stats[3] = m->c.balance == 0 ? (double)m->c.coef * balance : 0.0;
  }
  {
    Timer t(&secs[DN_OP_GATHER]);
#pragma omp parallel for schedule(static) if (S * d > 16384)
    for (int64_t r = 0; r < S; ++r) {
      const float wr = w[m->row_slot[r]];
      const float* src = h + m->row_tok[r] * d;
      float* dst = x + r * d;
#pragma omp simd
      for (int64_t i = 0; i < d; ++i) dst[i] = wr * src[i];
    }
  }
  {
    // Each expert over its rows: [a | u] = x·gate_upᵀ, m = silu(a) ⊙ u, y = m·downᵀ (its SwiGLU timed with the GEMMs).
    Timer t(&secs[DN_OP_GEMM]);
    DN_TRY(each_expert(*m, [&](int64_t e, int64_t r0, int64_t cnt, bool serial) -> dn_status {
      DN_TRY(gemm(serial, 0, 1, cnt, 2 * F, d, x + r0 * d, d, P + o->gate_up + e * 2 * F * d, d, 0.0f, au + r0 * 2 * F, 2 * F));
      DN_TRY(dn_swiglu_forward(cnt, F, au + r0 * 2 * F, mm + r0 * F));
      return gemm(serial, 0, 1, cnt, d, F, mm + r0 * F, F, P + o->down + e * d * F, F, 0.0f, y + r0 * d, d);
    }));
  }
  if (SF > 0) {
    // The shared experts: one SwiGLU of width SF over every token, added into out.
    float* sau = ensure(m->sau, N * 2 * SF);
    float* sm = ensure(m->sm, N * SF);
    { Timer t(&secs[DN_OP_GEMM]); DN_TRY(dn_sgemm(0, 1, N, 2 * SF, d, 1.0f, h, d, P + o->shared_w1, d, 0.0f, sau, 2 * SF)); }
    { Timer t(&secs[DN_OP_SWIGLU]); DN_TRY(dn_swiglu_forward(N, SF, sau, sm)); }
    { Timer t(&secs[DN_OP_GEMM]); DN_TRY(dn_sgemm(0, 1, N, d, SF, 1.0f, sm, SF, P + o->shared_w2, SF, 1.0f, out, d)); }
  }
  {
    // Combine: each token adds its k expert outputs in slot order (one writer per output row).
    Timer t(&secs[DN_OP_GATHER]);
#pragma omp parallel for schedule(static) if (N * d > 16384)
    for (int64_t n = 0; n < N; ++n) {
      float* dst = out + n * d;
      for (int64_t j = 0; j < k; ++j) {
        const float* src = y + m->pos[n * k + j] * d;
#pragma omp simd
        for (int64_t i = 0; i < d; ++i) dst[i] += src[i];
      }
    }
  }
  m->have_forward = true;
  return DN_OK;
}

extern "C" dn_status dn_moe_backward(dn_moe* m, const float* P, const dn_moe_offsets* o, const float* dout,
                                     float aux_weight, float* G, float* dh) {
  if (!m->have_forward) return dn_fail(DN_INVALID_ARGUMENT, "dn_moe_backward: no forward to back-propagate");
  if (bad_offsets(*m, o)) return dn_fail(DN_INVALID_ARGUMENT, "dn_moe_backward: a tensor offset is missing");
  const int64_t N = m->N, d = m->d, E = m->E, k = m->k, F = m->F, SF = m->SF, S = N * k;
  const float* h = m->h.data();
  const float* w = m->w.data();
  float* dy = ensure(m->dy, S * d);
  float* dm = ensure(m->dm, S * F);
  float* dau = ensure(m->dau, S * 2 * F);
  float* dx = ensure(m->dx, S * d);
  float* dl = ensure(m->dlogits, N * E);
  float* dw = ensure(m->dw, S);
  double* secs = m->secs;
  if (SF > 0) {
    // The shared experts; dh starts as their input gradient.
    float* dsm = ensure(m->dsm, N * SF);
    float* dsau = ensure(m->dsau, N * 2 * SF);
    {
      Timer t(&secs[DN_OP_GEMM]);
      DN_TRY(dn_sgemm(0, 0, N, SF, d, 1.0f, dout, d, P + o->shared_w2, SF, 0.0f, dsm, SF));
      DN_TRY(dn_sgemm(1, 0, d, SF, N, 1.0f, dout, d, m->sm.data(), SF, 1.0f, G + o->shared_w2, SF));
    }
    { Timer t(&secs[DN_OP_SWIGLU]); DN_TRY(dn_swiglu_backward(N, SF, dsm, m->sau.data(), dsau)); }
    {
      Timer t(&secs[DN_OP_GEMM]);
      DN_TRY(dn_sgemm(0, 0, N, d, 2 * SF, 1.0f, dsau, 2 * SF, P + o->shared_w1, d, 0.0f, dh, d));
      DN_TRY(dn_sgemm(1, 0, 2 * SF, d, N, 1.0f, dsau, 2 * SF, h, d, 1.0f, G + o->shared_w1, d));
    }
  } else {
    std::memset(dh, 0, sizeof(float) * N * d);
  }
  {
    Timer t(&secs[DN_OP_GATHER]);
#pragma omp parallel for schedule(static) if (S * d > 16384)
    for (int64_t r = 0; r < S; ++r) std::memcpy(dy + r * d, dout + m->row_tok[r] * d, sizeof(float) * d);
  }
  {
    // Each expert back through its rows: dm, ∂down, SwiGLU, dx, ∂gate_up (its SwiGLU timed with the GEMMs).
    Timer t(&secs[DN_OP_GEMM]);
    const float *xs = m->x.data(), *ms = m->m.data(), *aus = m->au.data();
    DN_TRY(each_expert(*m, [&](int64_t e, int64_t r0, int64_t cnt, bool serial) -> dn_status {
      const float* down = P + o->down + e * d * F;
      const float* gu = P + o->gate_up + e * 2 * F * d;
      DN_TRY(gemm(serial, 0, 0, cnt, F, d, dy + r0 * d, d, down, F, 0.0f, dm + r0 * F, F));
      DN_TRY(gemm(serial, 1, 0, d, F, cnt, dy + r0 * d, d, ms + r0 * F, F, 1.0f, G + o->down + e * d * F, F));
      DN_TRY(dn_swiglu_backward(cnt, F, dm + r0 * F, aus + r0 * 2 * F, dau + r0 * 2 * F));
      DN_TRY(gemm(serial, 0, 0, cnt, d, 2 * F, dau + r0 * 2 * F, 2 * F, gu, d, 0.0f, dx + r0 * d, d));
      return gemm(serial, 1, 0, 2 * F, d, cnt, dau + r0 * 2 * F, 2 * F, xs + r0 * d, d, 1.0f, G + o->gate_up + e * 2 * F * d, d);
    }));
  }
  {
    // x = w·h: each slot's weight gets dx·h; each token's input gets Σ_j w_j·dx_j in slot order.
    Timer t(&secs[DN_OP_GATHER]);
#pragma omp parallel for schedule(static) if (S * d > 16384)
    for (int64_t r = 0; r < S; ++r) {
      const float* a = dx + r * d;
      const float* b = h + m->row_tok[r] * d;
      double s = 0.0;
      for (int64_t i = 0; i < d; ++i) s += (double)a[i] * b[i];
      dw[m->row_slot[r]] = (float)s;
    }
#pragma omp parallel for schedule(static) if (N * d > 16384)
    for (int64_t n = 0; n < N; ++n) {
      float* dst = dh + n * d;
      for (int64_t j = 0; j < k; ++j) {
        const float wj = w[n * k + j];
        const float* src = dx + m->pos[n * k + j] * d;
#pragma omp simd
        for (int64_t i = 0; i < d; ++i) dst[i] += wj * src[i];
      }
    }
  }
  {
    // Router logits: the weights' gradient (sigmoid, or softmax over the chosen) and the aux loss's
    // ∂/∂p_ne = aux_weight·coef·E·f_e/N through p (softmax over all, or σ/Σσ).
    Timer t(&secs[DN_OP_ROUTE]);
    const bool aux = m->c.balance == 0 && m->c.coef != 0.0f && aux_weight != 0.0f;
    const double scale = (double)aux_weight * (double)m->c.coef * (double)E / (double)N;
    const float* logits = m->logits.data();
    const float* p = m->p.data();
#pragma omp parallel for schedule(static) if (N * E > 4096)
    for (int64_t n = 0; n < N; ++n) {
      float* row = dl + n * E;
      std::fill(row, row + E, 0.0f);
      const int32_t* sel = m->sel.data() + n * k;
      const float* wn = w + n * k;
      const float* dwn = dw + n * k;
      if (m->c.router == 0) {
        for (int64_t j = 0; j < k; ++j) row[sel[j]] += dwn[j] * wn[j] * (1.0f - wn[j]);
      } else {
        double dot = 0.0;
        for (int64_t j = 0; j < k; ++j) dot += (double)wn[j] * dwn[j];
        for (int64_t j = 0; j < k; ++j) row[sel[j]] += (float)(wn[j] * (dwn[j] - dot));
      }
      if (!aux) continue;
      const float* pn = p + n * E;
      double dot = 0.0;
      for (int64_t e = 0; e < E; ++e) dot += (double)pn[e] * scale * (m->load[e] / (double)S);
      if (m->c.router == 1) {
        for (int64_t e = 0; e < E; ++e) row[e] += (float)(pn[e] * (scale * (m->load[e] / (double)S) - dot));
      } else {
        double z = 0.0;
        for (int64_t e = 0; e < E; ++e) z += sigmoid(logits[n * E + e]);
        for (int64_t e = 0; e < E; ++e) {
          const double sg = sigmoid(logits[n * E + e]);
          row[e] += (float)((scale * (m->load[e] / (double)S) - dot) / z * sg * (1.0 - sg));
        }
      }
    }
    DN_TRY(dn_sgemm(1, 0, E, d, N, 1.0f, dl, E, h, d, 1.0f, G + o->router, d));
    DN_TRY(dn_sgemm(0, 0, N, d, E, 1.0f, dl, E, P + o->router, d, 1.0f, dh, d));
  }
  return DN_OK;
}

extern "C" dn_status dn_moe_stats(const dn_moe* m, double* load, double* scalars) {
  if (!m->have_forward) return dn_fail(DN_INVALID_ARGUMENT, "dn_moe_stats: no forward yet");
  for (int64_t e = 0; e < m->E; ++e) load[e] = m->load[e];
  for (int i = 0; i < 4; ++i) scalars[i] = m->stats[i];
  return DN_OK;
}
