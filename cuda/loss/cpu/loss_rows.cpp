// CPU kernels for the fused distillation losses (dn_loss.h): N rows × V logits → loss sums and
// d total / d logits, two passes per row (online log-sum-exp; then gradient), OpenMP over rows,
// AVX-512 or AVX2 where the build machine has it (common/dn_simd.h). The k-entry teacher math is
// dn_loss_math.h, in double.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/dn_simd.h"
#include "loss/dn_loss.h"
#include "loss/dn_loss_math.h"

namespace {

// Rows are walked in blocks that stay in L1, so the online max/sum touches memory once.
constexpr int64_t kBlock = 1024;

#ifdef DN_SIMD
using dn_simd::Isa;
#endif

struct BlockStats {
  float max, min;
  bool nan;
};

inline BlockStats block_minmax(const float* z, int64_t len) {
  int64_t i = 0;
  float mx = -INFINITY, mn = INFINITY;
  bool nan = false;
#ifdef DN_SIMD
  typename Isa::F vmx = Isa::set1(-INFINITY), vmn = Isa::set1(INFINITY);
  for (; i + Isa::W <= len; i += Isa::W) {
    typename Isa::F x = Isa::load(z + i);
    vmx = Isa::max(vmx, x);
    vmn = Isa::min(vmn, x);
    nan |= Isa::anynan(x);
  }
  mx = Isa::rmax(vmx);
  mn = Isa::rmin(vmn);
#endif
  for (; i < len; ++i) {
    float x = z[i];
    if (x != x) nan = true;
    mx = x > mx ? x : mx;
    mn = x < mn ? x : mn;
  }
  return {mx, mn, nan};
}

// Σ exp(z·scale + bias) over a block.
inline double block_sumexp(const float* z, int64_t len, float scale, float bias) {
  int64_t i = 0;
  double s = 0;
#ifdef DN_SIMD
  const typename Isa::F vs = Isa::set1(scale), vb = Isa::set1(bias);
  typename Isa::F acc0 = Isa::set1(0.0f), acc1 = Isa::set1(0.0f);
  for (; i + 2 * Isa::W <= len; i += 2 * Isa::W) {
    acc0 = Isa::add(acc0, Isa::exp(Isa::fma(Isa::load(z + i), vs, vb)));
    acc1 = Isa::add(acc1, Isa::exp(Isa::fma(Isa::load(z + i + Isa::W), vs, vb)));
  }
  s = Isa::rsum(Isa::add(acc0, acc1));
#endif
  for (; i < len; ++i) s += std::exp(z[i] * scale + bias);
  return s;
}

// grad[i] = c1·exp(z_i + b1) + cT·exp(z_i·invT + bT). grad may alias z; otherwise the row is written
// with streaming stores (no read-for-ownership: the same memory traffic as a copy).
inline void row_gradient(const float* z, float* grad, int64_t v, float c1, float b1, float cT, float invT,
                         float bT) {
  if (c1 == 0.0f && cT == 0.0f) {
    std::memset(grad, 0, sizeof(float) * v);
    return;
  }
  auto scalar = [&](int64_t i) {
    float x = z[i];
    float g = 0.0f;
    if (c1 != 0.0f) g += c1 * std::exp(x + b1);
    if (cT != 0.0f) g += cT * std::exp(x * invT + bT);
    grad[i] = g;
  };
  int64_t i = 0;
#ifdef DN_SIMD
  const bool stream = grad != z;
  if (stream) {
    while (i < v && (reinterpret_cast<uintptr_t>(grad + i) % (sizeof(float) * Isa::W)) != 0) scalar(i++);
  }
  const typename Isa::F vc1 = Isa::set1(c1), vb1 = Isa::set1(b1), vcT = Isa::set1(cT), vinvT = Isa::set1(invT),
                        vbT = Isa::set1(bT);
  const int mode = (c1 != 0.0f) | ((cT != 0.0f) << 1);
  for (; i + Isa::W <= v; i += Isa::W) {
    typename Isa::F x = Isa::load(z + i), g;
    if (mode == 1) {
      g = Isa::mul(vc1, Isa::exp(Isa::add(x, vb1)));
    } else if (mode == 2) {
      g = Isa::mul(vcT, Isa::exp(Isa::fma(x, vinvT, vbT)));
    } else {
      g = Isa::fma(vcT, Isa::exp(Isa::fma(x, vinvT, vbT)), Isa::mul(vc1, Isa::exp(Isa::add(x, vb1))));
    }
    if (stream) Isa::stream(grad + i, g);
    else Isa::store(grad + i, g);
  }
  if (stream) _mm_sfence();
#endif
  for (; i < v; ++i) scalar(i);
}

struct Scratch {
  std::vector<double> s, g;
};

}  // namespace

extern "C" dn_status dn_loss_rows_f32(const dn_loss_params* params, int64_t n, int64_t v,
                                      const float* logits, int64_t ld, const int32_t* labels,
                                      const int32_t* teacher_ids, const float* teacher_logp, int64_t k,
                                      double denom, float* grad, dn_loss_result* out) {
  dn_status st = dn_validate_loss_args(params, n, v, logits, ld, labels, teacher_ids, teacher_logp, k,
                                        denom, grad, out);
  if (st != DN_OK) return st;
  const dn_loss_params P = *params;
  const bool soft = P.kind != DN_LOSS_CE && P.soft_weight != 0.0f;
  const bool hard = P.hard_weight != 0.0f;
  const double T = P.temperature;
  const float invT = (float)(1.0 / T);
  const bool sameT = T == 1.0;
  const double scale = P.scale_t2 ? T * T : 1.0;
  const double invD = 1.0 / denom;
  // Only these kinds see the full-vocabulary student (σ_T); the others live on the k ids alone.
  const bool need_sigmaT = soft && (P.kind == DN_LOSS_FORWARD_KL || P.kind == DN_LOSS_SAMPLED ||
                                    P.support == DN_SUPPORT_BUCKET);
  // Each Σexp costs one exp per logit: compute only the ones the parts need (one when T = 1).
  const bool need1 = hard || (sameT && need_sigmaT);
  const bool needT = !sameT && need_sigmaT;

  double total = 0, hard_sum = 0, soft_sum = 0;
  int64_t counted = 0, agree = 0;
  int64_t bad_flat = -1;

#pragma omp parallel reduction(+ : total, hard_sum, soft_sum, counted, agree)
  {
    Scratch sc;
    sc.s.resize(std::max<int64_t>(k, 1));
    sc.g.resize(std::max<int64_t>(k, 1));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < n; ++r) {
      const float* z = logits + r * ld;
      float* gr = grad + r * v;
      const bool masked = labels && labels[r] == -100;

      // Pass 1: online max and Σexp at T = 1 and at T, per L1-sized block; non-finite detection.
      float M = -INFINITY, mn = INFINITY;
      bool nan = false;
      int64_t arg_block = 0;
      double S1 = 0, ST = 0;
      for (int64_t b0 = 0; b0 < v; b0 += kBlock) {
        const int64_t len = std::min(kBlock, v - b0);
        BlockStats bs = block_minmax(z + b0, len);
        nan |= bs.nan;
        mn = std::min(mn, bs.min);
        if (nan || mn == -INFINITY || bs.max == INFINITY) break;
        if (masked) continue;
        if (bs.max > M) {
          if (M != -INFINITY) {
            S1 *= std::exp((double)M - bs.max);
            ST *= std::exp(((double)M - bs.max) * invT);
          }
          M = bs.max;
          arg_block = b0;
        }
        if (need1) S1 += block_sumexp(z + b0, len, 1.0f, -M);
        if (needT) ST += block_sumexp(z + b0, len, invT, -M * invT);
      }
      if (nan || mn == -INFINITY || M == INFINITY || (!masked && v > 0 && !(M > -INFINITY))) {
        int64_t c = 0;
        while (c < v && std::isfinite(z[c])) ++c;
#pragma omp critical(dn_loss_bad)
        if (bad_flat < 0 || r * v + c < bad_flat) bad_flat = r * v + c;
        continue;
      }
      if (masked) {
        std::memset(gr, 0, sizeof(float) * v);
        continue;
      }
      ++counted;
      // Without σ_T the soft part only sees differences of s at the ids: any lseT will do.
      const double lse1 = need1 ? M + std::log(S1) : (double)M;
      const double lseT = sameT ? lse1 : needT ? (double)M * invT + std::log(ST) : (double)M * invT;

      int64_t student_top = arg_block;
      while (student_top < v - 1 && z[student_top] != M) ++student_top;

      double ce = 0;
      float c1 = 0, cT = 0;
      if (hard) {
        ce = lse1 - z[labels[r]];
        c1 = (float)(P.hard_weight * invD);
      }
      double L = 0, G = 0;
      const int32_t* ids = teacher_ids ? teacher_ids + r * k : nullptr;
      const float* a = teacher_logp ? teacher_logp + r * k : nullptr;
      if (soft) {
        for (int64_t j = 0; j < k; ++j) sc.s[j] = (double)z[ids[j]] * invT - lseT;
        L = dn_soft_row<double>(P.kind, P.support, T, P.beta, P.alpha, k, a, sc.s.data(), sc.g.data(), &G);
        if (need_sigmaT) cT = (float)(-P.soft_weight * scale / T * G * invD);
      }
      if (a && k > 0) {
        int64_t best = -1;
        for (int64_t j = 0; j < k; ++j)
          if (dn_entry_valid<double>(P.kind, a[j]) && (best < 0 || a[j] > a[best])) best = j;
        if (best >= 0 && ids[best] == student_top) ++agree;
      }
      if (sameT) {
        c1 += cT;
        cT = 0;
      }
      // Gather done: pass 2 may now overwrite z when grad aliases it.
      row_gradient(z, gr, v, c1, (float)-lse1, cT, invT, (float)-lseT);
      if (hard) gr[labels[r]] -= (float)(P.hard_weight * invD);
      if (soft) {
        const double gs = P.soft_weight * scale / T * invD;
        for (int64_t j = 0; j < k; ++j) gr[ids[j]] += (float)(gs * sc.g[j]);
      }
      hard_sum += ce;
      soft_sum += scale * L;
      total += P.hard_weight * ce + P.soft_weight * scale * L;
    }
  }
  out->total_sum = total;
  out->hard_sum = hard_sum;
  out->soft_sum = soft_sum;
  out->counted = counted;
  out->agree = agree;
  out->bad_row = bad_flat < 0 ? -1 : bad_flat / std::max<int64_t>(v, 1);
  out->bad_col = bad_flat < 0 ? -1 : bad_flat % std::max<int64_t>(v, 1);
  if (bad_flat >= 0) {
    float x = logits[out->bad_row * ld + out->bad_col];
    return dn_fail(DN_NON_FINITE, "non-finite student logit %s at row %lld, column %lld",
                   x != x ? "NaN" : x > 0 ? "+inf" : "-inf", (long long)out->bad_row,
                   (long long)out->bad_col);
  }
  return DN_OK;
}
