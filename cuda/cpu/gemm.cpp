// dn_sgemm: row-major single-precision GEMM (dn_gemm.h). Straightforward OpenMP version over rows of C;
// the inner loop runs over contiguous memory so the compiler vectorizes it.
#include <omp.h>

#include <vector>

#include "dn_gemm.h"

extern "C" dn_status dn_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                              const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                              float* c, int64_t ldc) {
  if (m < 0 || n < 0 || k < 0) return dn_fail(DN_INVALID_ARGUMENT, "dn_sgemm: negative dimension");
#pragma omp parallel
  {
    std::vector<float> brow;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < m; ++i) {
      float* ci = c + i * ldc;
      if (beta == 0.0f) {
        for (int64_t j = 0; j < n; ++j) ci[j] = 0.0f;
      } else if (beta != 1.0f) {
        for (int64_t j = 0; j < n; ++j) ci[j] *= beta;
      }
      if (!trans_b) {
        // C[i,:] += alpha * sum_p A(i,p) * B[p,:]
        for (int64_t p = 0; p < k; ++p) {
          const float aip = alpha * (trans_a ? a[p * lda + i] : a[i * lda + p]);
          const float* bp = b + p * ldb;
          for (int64_t j = 0; j < n; ++j) ci[j] += aip * bp[j];
        }
      } else {
        // C[i,j] += alpha * dot(A(i,:), B[j,:])
        brow.resize(k);
        for (int64_t p = 0; p < k; ++p) brow[p] = trans_a ? a[p * lda + i] : a[i * lda + p];
        for (int64_t j = 0; j < n; ++j) {
          const float* bj = b + j * ldb;
          float s = 0.0f;
          for (int64_t p = 0; p < k; ++p) s += brow[p] * bj[p];
          ci[j] += alpha * s;
        }
      }
    }
  }
  return DN_OK;
}
