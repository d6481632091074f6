// dn_sgemm: row-major single-precision GEMM (dn_gemm.h), C[M×N] = alpha·op(A)·op(B) + beta·C. Checks the arguments
// and runs the copy of the kernels (gemm_blocked.h) compiled for the instruction-set level in use (dn_get_isa).
#include "gemm/cpu/gemm_internal.h"
#include "gemm/dn_gemm.h"

namespace {
dn_status sgemm_impl(bool parallel, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                     const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                     const float* d = nullptr, int64_t ldd = 0) {
  if (m < 0 || n < 0 || k < 0) return dn_fail(DN_INVALID_ARGUMENT, "dn_sgemm: negative dimension (m=%lld n=%lld k=%lld)", (long long)m, (long long)n, (long long)k);
  if (m == 0 || n == 0) return DN_OK;
  if (ldc < n) return dn_fail(DN_INVALID_ARGUMENT, "dn_sgemm: ldc=%lld < n=%lld", (long long)ldc, (long long)n);
  if (d && ldd < n) return dn_fail(DN_INVALID_ARGUMENT, "dn_sgemm_add: ldd=%lld < n=%lld", (long long)ldd, (long long)n);
  if (k > 0) {
    if (lda < (trans_a ? m : k)) return dn_fail(DN_INVALID_ARGUMENT, "dn_sgemm: lda=%lld too small", (long long)lda);
    if (ldb < (trans_b ? k : n)) return dn_fail(DN_INVALID_ARGUMENT, "dn_sgemm: ldb=%lld too small", (long long)ldb);
  }
  const dn_gemm::Operand A{a, lda, trans_a != 0}, B{b, ldb, trans_b != 0};
  switch (dn_get_isa()) {
    case DN_ISA_AVX512:
      dn_gemm::avx512::sgemm(parallel, A, B, m, n, k, alpha, beta, c, ldc, d, ldd);
      break;
    case DN_ISA_AVX2:
      dn_gemm::avx2::sgemm(parallel, A, B, m, n, k, alpha, beta, c, ldc, d, ldd);
      break;
    default:
      dn_gemm::scalar::sgemm(parallel, A, B, m, n, k, alpha, beta, c, ldc, d, ldd);
  }
  return DN_OK;
}
}  // namespace

extern "C" dn_status dn_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                              const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                              float* c, int64_t ldc) {
  return sgemm_impl(true, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

extern "C" dn_status dn_sgemm_add(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                                  const float* a, int64_t lda, const float* b, int64_t ldb, const float* d,
                                  int64_t ldd, float* c, int64_t ldc) {
  if (!d) return dn_fail(DN_INVALID_ARGUMENT, "dn_sgemm_add: d is NULL");
  return sgemm_impl(true, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, 0.0f, c, ldc, d, ldd);
}

extern "C" dn_status dn_sgemm_serial(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                                     const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                                     float* c, int64_t ldc) {
  return sgemm_impl(false, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
