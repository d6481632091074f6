// Internal to the loss rows kernel: the per-block loops it runs on each row, one copy per instruction-set level
// (loss_rows_simd.h compiled by loss_rows_<level>.cpp), so that dn_get_isa() can choose at run time.
#pragma once
#include <cstdint>

namespace dn_loss_rows {

// Rows are walked in blocks that stay in L1, so the online max/sum touches memory once.
constexpr int64_t kBlock = 1024;

struct BlockStats {
  float max;
  bool nonfinite;  // some logit is NaN or ±inf
};

struct RowOps {
  // Max of z[0..len) and whether any is not finite.
  BlockStats (*max)(const float* z, int64_t len);
  // Σ exp(z·scale + bias) over z[0..len), each term written to e[0..len).
  double (*sumexp)(const float* z, int64_t len, float scale, float bias, float* e);
  // grad[i] = f1[b]·e1[i] + fT[b]·eT[i] over i < v, b = i / kBlock; e1 or eT null: that term is 0.
  void (*gradient)(const float* e1, const float* f1, const float* eT, const float* fT, float* grad, int64_t v);
};

namespace avx512 {
extern const RowOps ops;
}
namespace avx2 {
extern const RowOps ops;
}
namespace scalar {
extern const RowOps ops;
}

}  // namespace dn_loss_rows
