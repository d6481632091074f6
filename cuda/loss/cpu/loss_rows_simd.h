// The loss rows' per-block vector loops for one instruction-set level, included by loss_rows_avx512.cpp,
// loss_rows_avx2.cpp and loss_rows_scalar.cpp (each compiled with its level's flags: CMakeLists.txt) inside namespace
// DN_LOSS_NS; loss_rows.cpp picks the copy for dn_get_isa(). The vector math is common/dn_simd.h.
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

// Σ exp(z·scale + bias) over a block.
double block_sumexp(const float* z, int64_t len, float scale, float bias) {
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
void row_gradient(const float* z, float* grad, int64_t v, float c1, float b1, float cT, float invT,
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

const RowOps ops = {block_minmax, block_sumexp, row_gradient};

}  // namespace DN_LOSS_NS
}  // namespace dn_loss_rows
