// CPU kernels for the fused distillation losses (dn_loss.h): N rows × V logits → loss sums and
// d total / d logits, two passes per row (online log-sum-exp, keeping each exp term; then the gradient, which scales
// those terms: one exp per logit and per temperature; a row's gradient pass runs block by block inside the next row's
// first pass, so its streaming stores drain while that pass computes), OpenMP over rows,
// the block loops in the AVX-512, AVX2 or scalar copy that dn_get_isa() selects (loss_rows_simd.h). The k-entry
// teacher math is dn_loss_math.h, in double.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "loss/cpu/loss_rows_internal.h"
#include "loss/dn_loss.h"
#include "loss/dn_loss_math.h"

namespace {

using dn_loss_rows::kBlock;

const dn_loss_rows::RowOps& row_ops() {
  switch (dn_get_isa()) {
    case DN_ISA_AVX512:
      return dn_loss_rows::avx512::ops;
    case DN_ISA_AVX2:
      return dn_loss_rows::avx2::ops;
    default:
      return dn_loss_rows::scalar::ops;
  }
}

struct Scratch {
  std::vector<double> s, g;
  // Pass 1's exp terms per logit (e1 at T = 1, eT at T) and each block's running max, so that pass 2 scales them
  // (f1, fT per block) instead of computing a second exp per logit; a row's terms stay in this core's cache.
  std::vector<float> e1, eT, mb, f1, fT;
  float c1 = 0, cT = 0;  // the gradient's factors on σ and σ_T (0: that term is absent)
};

// A row whose gradient pass is still to be written, block by block, while the next row's first pass computes: the
// streaming stores then drain to memory under that pass's arithmetic instead of after it.
struct Pending {
  bool active = false;
  int64_t row = 0, done = 0;  // blocks written so far
  int buf = 0;                // which Scratch holds its terms
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
  const dn_loss_rows::RowOps& ops = row_ops();

#pragma omp parallel reduction(+ : total, hard_sum, soft_sum, counted, agree)
  {
    // Two sets of terms: the current row's and the pending one's.
    Scratch bufs[2];
    const int64_t nblocks = (v + kBlock - 1) / kBlock;
    for (Scratch& b : bufs) {
      b.s.resize(std::max<int64_t>(k, 1));
      b.g.resize(std::max<int64_t>(k, 1));
      if (need1) b.e1.resize(v);
      if (needT) b.eT.resize(v);
      b.mb.resize(nblocks);
      b.f1.resize(nblocks);
      b.fT.resize(nblocks);
    }
    int cur = 0;
    Pending pend;
    // The label's and the k ids' terms, added once the row's gradient is written.
    auto add_sparse = [&](int64_t r, const Scratch& b) {
      float* gr = grad + r * v;
      if (hard) gr[labels[r]] -= (float)(P.hard_weight * invD);
      if (soft) {
        const int32_t* ids = teacher_ids + r * k;
        const double gs = P.soft_weight * scale / T * invD;
        for (int64_t j = 0; j < k; ++j) gr[ids[j]] += (float)(gs * b.g[j]);
      }
    };
    // Pass 2 of the pending row up to block `upto`: grad = c1·σ + cT·σ_T from pass 1's terms, block b's scaled by
    // exp(M_b − lse), M_b the running max its terms were taken against.
    auto write_pending = [&](int64_t upto) {
      if (!pend.active) return;
      const Scratch& b = bufs[pend.buf];
      float* gr = grad + pend.row * v;
      for (; pend.done < std::min(upto, nblocks); ++pend.done) {
        const int64_t b0 = pend.done * kBlock, len = std::min(kBlock, v - b0);
        ops.gradient(b.c1 != 0.0f ? b.e1.data() + b0 : nullptr, b.f1.data() + pend.done,
                     b.cT != 0.0f ? b.eT.data() + b0 : nullptr, b.fT.data() + pend.done, gr + b0, len);
      }
    };
    auto finish_pending = [&]() {
      if (!pend.active) return;
      write_pending(nblocks);
      // The streaming stores of the row are ordered before the sparse terms' read-modify-writes (and the caller).
      std::atomic_thread_fence(std::memory_order_seq_cst);
      add_sparse(pend.row, bufs[pend.buf]);
      pend.active = false;
    };
#pragma omp for schedule(static) nowait
    for (int64_t r = 0; r < n; ++r) {
      Scratch& sc = bufs[cur];
      const float* z = logits + r * ld;
      float* gr = grad + r * v;
      const bool masked = labels && labels[r] == -100;

      // Pass 1: online max and Σexp at T = 1 and at T, per L1-sized block; stops at the first block with a non-finite
      // logit.
      float M = -INFINITY;
      bool bad = false;
      int64_t arg_block = 0;
      double S1 = 0, ST = 0;
      for (int64_t b0 = 0; b0 < v; b0 += kBlock) {
        const int64_t len = std::min(kBlock, v - b0);
        const dn_loss_rows::BlockStats bs = ops.max(z + b0, len);
        bad = bs.nonfinite;
        if (bad) break;
        write_pending(b0 / kBlock + 1);
        if (masked) continue;
        if (bs.max > M) {
          if (M != -INFINITY) {
            S1 *= std::exp((double)M - bs.max);
            ST *= std::exp(((double)M - bs.max) * invT);
          }
          M = bs.max;
          arg_block = b0;
        }
        sc.mb[b0 / kBlock] = M;
        if (need1) S1 += ops.sumexp(z + b0, len, 1.0f, -M, sc.e1.data() + b0);
        if (needT) ST += ops.sumexp(z + b0, len, invT, -M * invT, sc.eT.data() + b0);
      }
      if (bad) {
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
      // The previous row is written out before this row's factors take their place (the gather above is done: the
      // gradient may overwrite z when grad aliases the logits).
      finish_pending();
      sc.c1 = c1;
      sc.cT = cT;
      if (c1 == 0.0f && cT == 0.0f) {
        std::memset(gr, 0, sizeof(float) * v);
        add_sparse(r, sc);
      } else {
        for (int64_t b = 0; b < nblocks; ++b) {
          sc.f1[b] = c1 != 0.0f ? (float)(c1 * std::exp((double)sc.mb[b] - lse1)) : 0.0f;
          sc.fT[b] = cT != 0.0f ? (float)(cT * std::exp((double)sc.mb[b] * invT - lseT)) : 0.0f;
        }
        pend = {true, r, 0, cur};
        cur ^= 1;
      }
      hard_sum += ce;
      soft_sum += scale * L;
      total += P.hard_weight * ce + P.soft_weight * scale * L;
    }
    finish_pending();
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
