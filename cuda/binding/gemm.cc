// N-API binding for the CPU GEMM (dn_gemm.h): sgemm. The arrays are checked to hold every element the
// strides reach; data is never copied.
#include <napi.h>

#include "gemm/dn_gemm.h"
#include "registry.h"

namespace {

// sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc[, serial]): serial = true runs dn_sgemm_serial
// (the kernels' in-team form, with its own small-product path), for the tests.
Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  const int ta = (int)dn::int_arg(info, 0, "transA"), tb = (int)dn::int_arg(info, 1, "transB");
  const int64_t m = dn::int_arg(info, 2, "m"), n = dn::int_arg(info, 3, "n"), k = dn::int_arg(info, 4, "k");
  const int64_t lda = dn::int_arg(info, 7, "lda"), ldb = dn::int_arg(info, 9, "ldb"), ldc = dn::int_arg(info, 12, "ldc");
  const int64_t need_a = k == 0 ? 0 : (ta ? (k - 1) * lda + m : (m - 1) * lda + k);
  const int64_t need_b = k == 0 ? 0 : (tb ? (n - 1) * ldb + k : (k - 1) * ldb + n);
  const int64_t need_c = m == 0 ? 0 : (m - 1) * ldc + n;
  const bool serial = info.Length() > 13 && info[13].ToBoolean().Value();
  dn_status st = (serial ? dn_sgemm_serial : dn_sgemm)(ta, tb, m, n, k, (float)dn::num_arg(info, 5, "alpha"), dn::f32(info, 6, "a", need_a), lda,
                          dn::f32(info, 8, "b", need_b), ldb, (float)dn::num_arg(info, 10, "beta"), dn::f32(info, 11, "c", need_c), ldc);
  if (st != DN_OK) dn::fail_status(info.Env(), st);
  return info.Env().Undefined();
}

void Register(Napi::Env env, Napi::Object exports) { exports.Set("sgemm", Napi::Function::New(env, Sgemm)); }

}  // namespace

DN_REGISTER_EXPORTS(Register);
