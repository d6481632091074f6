// Compiled by gemm-isa.test.ts for AVX-512, AVX2 (haswell) and portable (x86-64) targets to check every
// micro-kernel of cuda/gemm/cpu/gemm.cpp against a double-precision product, whatever the build machine picks.
#include "gemm/cpu/gemm.cpp"
#include <cstdio>
#include <cmath>
#include <vector>
extern "C" dn_status dn_fail(dn_status s, const char*, ...) { return s; }
int main() {
  int shapes[][3] = {{1,1,1},{3,5,7},{37,45,29},{25,67,341},{149,31,13},{3,4100,30},{5,2100,1100},{300,33,641},{13,200,700}};
  unsigned seed = 1; auto rnd = [&]() { seed = seed * 1664525u + 1013904223u; return (seed >> 8) / 16777216.0f - 0.5f; };
  double worst = 0;
  for (int ta=0;ta<2;++ta) for (int tb=0;tb<2;++tb) for (auto&s:shapes){ int64_t m=s[0],n=s[1],k=s[2];
    std::vector<float> A(m*k),B(k*n),C(m*n);
    for (auto& x:A) x=rnd(); for (auto& x:B) x=rnd(); for (auto& x:C) x=rnd();
    std::vector<float> C0=C;
    int64_t lda=ta?m:k, ldb=tb?k:n;
    dn_sgemm(ta,tb,m,n,k,0.5f,A.data(),lda,B.data(),ldb,2.0f,C.data(),n);
    for (int64_t i=0;i<m;++i) for (int64_t j=0;j<n;++j){ double acc=0; for(int64_t p=0;p<k;++p) acc+=(double)(ta?A[p*lda+i]:A[i*lda+p])*(tb?B[j*ldb+p]:B[p*ldb+j]);
      double want=0.5*acc+2.0*C0[i*n+j]; worst=std::max(worst, std::fabs(want-C[i*n+j])/(1+std::sqrt((double)k))); } }
  // dn_sgemm_serial takes the unpacked small-product path where it applies (n a multiple
  // of NR or B transposed, k <= KC): the attention's per-head shapes and odd ones around them.
  int small[][3] = {{64,32,256},{70,64,100},{13,96,200},{64,256,32},{29,45,64},{1,32,7},{15,33,256}};
  for (int ta=0;ta<2;++ta) for (int tb=0;tb<2;++tb) for (auto&s:small){ int64_t m=s[0],n=s[1],k=s[2];
    std::vector<float> A(m*k),B(k*n),C(m*n);
    for (auto& x:A) x=rnd(); for (auto& x:B) x=rnd(); for (auto& x:C) x=rnd();
    int64_t lda=ta?m:k, ldb=tb?k:n;
    std::vector<float> C0=C;
    dn_sgemm_serial(ta,tb,m,n,k,0.25f,A.data(),lda,B.data(),ldb,1.0f,C.data(),n);
    for (int64_t i=0;i<m;++i) for (int64_t j=0;j<n;++j){ double acc=0; for(int64_t p=0;p<k;++p) acc+=(double)(ta?A[p*lda+i]:A[i*lda+p])*(tb?B[j*ldb+p]:B[p*ldb+j]);
      worst=std::max(worst, std::fabs(0.25*acc+C0[i*n+j]-C[i*n+j])/(1+std::sqrt((double)k))); } }
  printf("MR=%d NR=%d worst=%.3g %s\n", MR, NR, worst, worst < 1e-5 ? "ok" : "BAD");
  return worst < 1e-5 ? 0 : 1;
}
