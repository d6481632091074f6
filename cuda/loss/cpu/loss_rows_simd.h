// The loss rows' per-block vector loops for one instruction-set level, included by loss_rows_avx512.cpp,
// loss_rows_avx2.cpp and loss_rows_scalar.cpp (each compiled with its level's flags: CMakeLists.txt) inside namespace
// DN_LOSS_NS; loss_rows.cpp picks the copy for dn_get_isa(). The vector math is common/dn_simd.h.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/dn_simd.h"
#include "loss/cpu/loss_rows_internal.h"

#ifndef DN_LOSS_NS
#error "loss_rows_simd.h is included by loss_rows_<level>.cpp, which names DN_LOSS_NS"
#endif

namespace dn_loss_rows {
namespace DN_LOSS_NS {

#ifdef DN_SIMD
using dn_simd::Isa;
#endif

// The block's max, and whether any logit is not finite: x·0 + acc stays 0 for finite x and turns NaN for ±inf or NaN,
// one FMA per vector where a min and a NaN compare with its mask move cost three.
BlockStats block_max(const float* z, int64_t len) {
  int64_t i = 0;
  float mx = -INFINITY, bad = 0.0f;
#ifdef DN_SIMD
  const typename Isa::F zero = Isa::set1(0.0f);
  typename Isa::F vmx0 = Isa::set1(-INFINITY), vmx1 = vmx0, vbad0 = zero, vbad1 = zero;
  for (; i + 2 * Isa::W <= len; i += 2 * Isa::W) {
    const typename Isa::F x0 = Isa::load(z + i), x1 = Isa::load(z + i + Isa::W);
    vmx0 = Isa::max(vmx0, x0);
    vmx1 = Isa::max(vmx1, x1);
    vbad0 = Isa::fma(x0, zero, vbad0);
    vbad1 = Isa::fma(x1, zero, vbad1);
  }
  mx = Isa::rmax(Isa::max(vmx0, vmx1));
  bad = Isa::rsum(Isa::add(vbad0, vbad1));
#endif
  for (; i < len; ++i) {
    mx = z[i] > mx ? z[i] : mx;
    bad += z[i] * 0.0f;
  }
  return {mx, bad != bad};
}

// Σ exp(z·scale + bias) over a block, each term also written to e (which stays in cache for pass 2); fetches the
// next block into L1 meanwhile.
double block_sumexp(const float* z, int64_t len, float scale, float bias, float* e) {
  int64_t i = 0;
  double s = 0;
#ifdef DN_SIMD
  const typename Isa::F vs = Isa::set1(scale), vb = Isa::set1(bias);
  typename Isa::F acc0 = Isa::set1(0.0f), acc1 = Isa::set1(0.0f);
  for (; i + 2 * Isa::W <= len; i += 2 * Isa::W) {
    // The next block's logits, the lines this step's 2·W floats span: its first pass, block_minmax, would otherwise
    // wait on memory while this loop computes, since the hardware prefetcher stops when the reads pause.
    for (int line = 0; line < 2 * Isa::W; line += 16)
      _mm_prefetch(reinterpret_cast<const char*>(z + i + kBlock + line), _MM_HINT_T0);
    const typename Isa::F x0 = Isa::exp_nonpositive(Isa::fma(Isa::load(z + i), vs, vb));
    const typename Isa::F x1 = Isa::exp_nonpositive(Isa::fma(Isa::load(z + i + Isa::W), vs, vb));
    Isa::store(e + i, x0);
    Isa::store(e + i + Isa::W, x1);
    acc0 = Isa::add(acc0, x0);
    acc1 = Isa::add(acc1, x1);
  }
  s = Isa::rsum(Isa::add(acc0, acc1));
#endif
  for (; i < len; ++i) {
    e[i] = std::exp(z[i] * scale + bias);
    s += e[i];
  }
  return s;
}

// grad[i] = f1[b]·e1[i] + fT[b]·eT[i], b = i / kBlock (a null e1 or eT is a zero term). The row is written with
// streaming stores: no read-for-ownership, the same memory traffic as a copy (grad may alias the logits: pass 2
// reads only e1 and eT).
void row_gradient(const float* e1, const float* f1, const float* eT, const float* fT, float* grad, int64_t v) {
  auto value = [&](int64_t i) {
    float g = 0.0f;
    if (e1) g += f1[i / kBlock] * e1[i];
    if (eT) g += fT[i / kBlock] * eT[i];
    return g;
  };
  int64_t i = 0;
#ifdef DN_SIMD
  for (; i < v && (reinterpret_cast<uintptr_t>(grad + i) % (sizeof(float) * Isa::W)) != 0; ++i) grad[i] = value(i);
  while (i + Isa::W <= v) {
    const int64_t b = i / kBlock, end = std::min(v, (b + 1) * kBlock);
    if (i + Isa::W > end) {
      // A block edge inside this vector (grad is not aligned like the row): element by element, stored whole.
      alignas(64) float tmp[Isa::W];
      for (int j = 0; j < Isa::W; ++j) tmp[j] = value(i + j);
      Isa::stream(grad + i, Isa::load(tmp));
      i += Isa::W;
      continue;
    }
    const typename Isa::F vf1 = Isa::set1(e1 ? f1[b] : 0.0f), vfT = Isa::set1(eT ? fT[b] : 0.0f);
    for (; i + Isa::W <= end; i += Isa::W) {
      typename Isa::F g;
      if (!eT) g = Isa::mul(vf1, Isa::load(e1 + i));
      else if (!e1) g = Isa::mul(vfT, Isa::load(eT + i));
      else g = Isa::fma(vfT, Isa::load(eT + i), Isa::mul(vf1, Isa::load(e1 + i)));
      Isa::stream(grad + i, g);
    }
  }
  // No fence here: the caller orders a whole row's streaming stores once it is written (loss_rows.cpp).
#endif
  for (; i < v; ++i) grad[i] = value(i);
}

const RowOps ops = {block_max, block_sumexp, row_gradient};

}  // namespace DN_LOSS_NS
}  // namespace dn_loss_rows
