/* Single-precision GEMM for the CPU kernels (row-major, PyTorch-style transposes).
 * C[M×N] = alpha · op(A) · op(B) + beta · C, op(X) = X or Xᵀ; lda/ldb/ldc are row strides.
 * Checked against a float64 product at every SIMD level the machine has: test/engine/gemm.test.ts. */
#ifndef DN_GEMM_H
#define DN_GEMM_H
#include "common/dn_common.h"

#ifdef __cplusplus
extern "C" {
#endif

dn_status dn_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                   int64_t ldc);

/* C = alpha · op(A) · op(B) + D (D [M×N], row stride ldd, not overlapping C): a residual added as the product is
 * stored, with no copy of D into C first; each element is summed in the order of a copy then dn_sgemm with beta 1. */
dn_status dn_sgemm_add(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                       int64_t lda, const float* b, int64_t ldb, const float* d, int64_t ldd, float* c, int64_t ldc);

/* dn_sgemm without OpenMP (same blocking and summation order, so the same bits): for kernels that
 * already run inside an OpenMP team and parallelize over independent products themselves. */
dn_status dn_sgemm_serial(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                          const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                          int64_t ldc);

#ifdef __cplusplus
}
#endif
#endif
