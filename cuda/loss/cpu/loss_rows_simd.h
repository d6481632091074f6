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

BlockStats block_minmax(const float* z, int64_t len) {
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
    const typename Isa::F x0 = Isa::exp(Isa::fma(Isa::load(z + i), vs, vb));
    const typename Isa::F x1 = Isa::exp(Isa::fma(Isa::load(z + i + Isa::W), vs, vb));
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
  _mm_sfence();
#endif
  for (; i < v; ++i) grad[i] = value(i);
}

const RowOps ops = {block_minmax, block_sumexp, row_gradient};

}  // namespace DN_LOSS_NS
}  // namespace dn_loss_rows
