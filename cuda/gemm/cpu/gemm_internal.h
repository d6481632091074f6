// Internal to the GEMM family: the operand description and the per-level entry points that gemm.cpp dispatches to
// (one copy of gemm_blocked.h per instruction-set level: gemm_avx512.cpp, gemm_avx2.cpp, gemm_scalar.cpp).
#pragma once
#include <cstdint>

#include "common/dn_common.h"

namespace dn_gemm {

// op(X): row-major with row stride ld, read transposed when `trans`.
struct Operand {
  const float* p;
  int64_t ld;
  bool trans;
};

// C = alpha·op(A)·op(B) + beta·C after dn_sgemm's argument checks (m, n > 0); with d, C = alpha·op(A)·op(B) + D
// (beta is then 0).
#define DN_GEMM_LEVEL(ns)                                                                                    \
  namespace ns {                                                                                             \
  void sgemm(bool parallel, const Operand& A, const Operand& B, int64_t m, int64_t n, int64_t k, float alpha, \
             float beta, float* c, int64_t ldc, const float* d = nullptr, int64_t ldd = 0);                  \
  }
DN_GEMM_LEVEL(avx512)
DN_GEMM_LEVEL(avx2)
DN_GEMM_LEVEL(scalar)
#undef DN_GEMM_LEVEL

}  // namespace dn_gemm
