// N-API binding for the CPU GEMM (dn_gemm.h): sgemm. The arrays are checked to hold every element the
// strides reach; data is never copied.
#include <napi.h>

#include "gemm/dn_gemm.h"
#include "registry.h"

namespace {

// sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc[, serial[, d, ldd]]): serial = true runs
// dn_sgemm_serial (the kernels' in-team form, with its own small-product path), for the tests; an addend d runs
// dn_sgemm_add (C = alpha·op(A)·op(B) + D, beta 0).
Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  const int ta = (int)dn::int_arg(info, 0, "transA"), tb = (int)dn::int_arg(info, 1, "transB");
  const int64_t m = dn::int_arg(info, 2, "m"), n = dn::int_arg(info, 3, "n"), k = dn::int_arg(info, 4, "k");
  const int64_t lda = dn::int_arg(info, 7, "lda"), ldb = dn::int_arg(info, 9, "ldb"), ldc = dn::int_arg(info, 12, "ldc");
  const int64_t need_a = k == 0 ? 0 : (ta ? (k - 1) * lda + m : (m - 1) * lda + k);
  const int64_t need_b = k == 0 ? 0 : (tb ? (n - 1) * ldb + k : (k - 1) * ldb + n);
  const int64_t need_c = m == 0 ? 0 : (m - 1) * ldc + n;
  const bool serial = info.Length() > 13 && info[13].ToBoolean().Value();
  const float alpha = (float)dn::num_arg(info, 5, "alpha"), beta = (float)dn::num_arg(info, 10, "beta");
  const float* a = dn::f32(info, 6, "a", need_a);
  const float* b = dn::f32(info, 8, "b", need_b);
  float* c = dn::f32(info, 11, "c", need_c);
  dn_status st;
  if (info.Length() > 14 && !info[14].IsUndefined()) {
    // An addend d (row stride ldd): C = alpha·op(A)·op(B) + D through dn_sgemm_add.
    const int64_t ldd = dn::int_arg(info, 15, "ldd");
    if (serial || beta != 0.0f)
      dn::throw_error(info.Env(), "E_NATIVE_ARGUMENT", "sgemm with an addend takes beta = 0 and no serial flag");
    st = dn_sgemm_add(ta, tb, m, n, k, alpha, a, lda, b, ldb, dn::f32(info, 14, "d", m == 0 ? 0 : (m - 1) * ldd + n), ldd, c, ldc);
  } else {
    st = (serial ? dn_sgemm_serial : dn_sgemm)(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  if (st != DN_OK) dn::fail_status(info.Env(), st);
  return info.Env().Undefined();
}

void Register(Napi::Env env, Napi::Object exports) { exports.Set("sgemm", Napi::Function::New(env, Sgemm)); }

}  // namespace

DN_REGISTER_EXPORTS(Register);
