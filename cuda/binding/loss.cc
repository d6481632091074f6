// N-API bindings for the loss kernels (dn_loss.h): lossRows, lmHeadLoss, cudaLossRows, and the enums
// lossKind, lossSupport, dtype, cudaLossKernel.
// Typed arrays are checked for type and length here; errors carry a stable code and, for a
// non-finite logit, badRow/badCol.
#include <napi.h>

#include <string>

#include "loss/dn_loss.h"
#include "registry.h"

namespace {

const char* code_for(dn_status st) {
  switch (st) {
    case DN_NON_FINITE: return "E_NON_FINITE";
    case DN_UNSUPPORTED: return "E_UNSUPPORTED";
    case DN_CUDA_ERROR: return "E_DEVICE";
    case DN_OUT_OF_MEMORY: return "E_DEVICE";
    default: return "E_NATIVE_ARGUMENT";
  }
}

[[noreturn]] void fail(Napi::Env env, dn_status st, const dn_loss_result& res) {
  Napi::Error err = Napi::Error::New(env, dn_last_error());
  err.Set("code", Napi::String::New(env, code_for(st)));
  if (st == DN_NON_FINITE && res.bad_row >= 0) {
    err.Set("badRow", Napi::Number::New(env, (double)res.bad_row));
    err.Set("badCol", Napi::Number::New(env, (double)res.bad_col));
  }
  throw err;
}

double num(const Napi::Object& o, const char* key, double dflt) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : dflt;
}

dn_loss_params read_params(const Napi::Value& v) {
  if (!v.IsObject()) dn::throw_error(v.Env(), "E_NATIVE_ARGUMENT", "loss params must be an object");
  Napi::Object o = v.As<Napi::Object>();
  dn_loss_params p;
  p.kind = (int32_t)num(o, "kind", 0);
  p.support = (int32_t)num(o, "support", 0);
  p.temperature = (float)num(o, "temperature", 1);
  p.beta = (float)num(o, "beta", 0.5);
  p.alpha = (float)num(o, "alpha", 0.1);
  p.scale_t2 = (int32_t)num(o, "scaleT2", 1);
  p.hard_weight = (float)num(o, "hardWeight", 0);
  p.soft_weight = (float)num(o, "softWeight", 0);
  return p;
}

int64_t i64(const Napi::CallbackInfo& info, size_t i) { return (int64_t)info[i].As<Napi::Number>().DoubleValue(); }

Napi::Object result(Napi::Env env, const dn_loss_result& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("totalSum", r.total_sum);
  o.Set("hardSum", r.hard_sum);
  o.Set("softSum", r.soft_sum);
  o.Set("counted", (double)r.counted);
  o.Set("agree", (double)r.agree);
  return o;
}

// lossRows(params, n, v, logits, labels|null, ids|null, logp|null, k, denom, grad)
Napi::Value LossRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 10) dn::throw_error(env, "E_NATIVE_ARGUMENT", "lossRows expects 10 arguments");
  dn_loss_params p = read_params(info[0]);
  int64_t n = i64(info, 1), v = i64(info, 2), k = i64(info, 7);
  double denom = info[8].As<Napi::Number>().DoubleValue();
  const float* logits = dn::typed<float, napi_float32_array>(info, 3, "logits", n * v, false);
  const int32_t* labels = dn::typed<int32_t, napi_int32_array>(info, 4, "labels", n, true);
  const int32_t* ids = dn::typed<int32_t, napi_int32_array>(info, 5, "teacher ids", n * k, true);
  const float* logp = dn::typed<float, napi_float32_array>(info, 6, "teacher logprobs", n * k, true);
  float* grad = dn::typed<float, napi_float32_array>(info, 9, "grad", n * v, false);
  dn_loss_result res{0, 0, 0, 0, 0, -1, -1};
  dn_status st = dn_loss_rows_f32(&p, n, v, logits, v, labels, ids, logp, k, denom, grad, &res);
  if (st != DN_OK) fail(env, st, res);
  return result(env, res);
}

// lmHeadLoss(params, n, d, v, hidden, weight, labels|null, ids|null, logp|null, k, chunkRows, gradHidden, gradWeight|null)
Napi::Value LmHeadLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 13) dn::throw_error(env, "E_NATIVE_ARGUMENT", "lmHeadLoss expects 13 arguments");
  dn_loss_params p = read_params(info[0]);
  int64_t n = i64(info, 1), d = i64(info, 2), v = i64(info, 3), k = i64(info, 9), chunk = i64(info, 10);
  const float* hidden = dn::typed<float, napi_float32_array>(info, 4, "hidden", n * d, false);
  const float* weight = dn::typed<float, napi_float32_array>(info, 5, "weight", v * d, false);
  const int32_t* labels = dn::typed<int32_t, napi_int32_array>(info, 6, "labels", n, true);
  const int32_t* ids = dn::typed<int32_t, napi_int32_array>(info, 7, "teacher ids", n * k, true);
  const float* logp = dn::typed<float, napi_float32_array>(info, 8, "teacher logprobs", n * k, true);
  float* gh = dn::typed<float, napi_float32_array>(info, 11, "gradHidden", n * d, false);
  float* gw = dn::typed<float, napi_float32_array>(info, 12, "gradWeight", v * d, true);
  dn_loss_result res{0, 0, 0, 0, 0, -1, -1};
  dn_status st = dn_lm_head_loss_f32(&p, n, d, v, hidden, weight, labels, ids, logp, k, chunk, gh, gw, &res);
  if (st != DN_OK) fail(env, st, res);
  return result(env, res);
}

// cudaLossRows(params, n, v, dtype, kernel, logits, labels|null, ids|null, logp|null, k, denom, grad)
Napi::Value CudaLossRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 12) dn::throw_error(env, "E_NATIVE_ARGUMENT", "cudaLossRows expects 12 arguments");
  dn_loss_params p = read_params(info[0]);
  int64_t n = i64(info, 1), v = i64(info, 2), k = i64(info, 9);
  int32_t dtype = (int32_t)i64(info, 3), kernel = (int32_t)i64(info, 4);
  double denom = info[10].As<Napi::Number>().DoubleValue();
  const float* logits = dn::typed<float, napi_float32_array>(info, 5, "logits", n * v, false);
  const int32_t* labels = dn::typed<int32_t, napi_int32_array>(info, 6, "labels", n, true);
  const int32_t* ids = dn::typed<int32_t, napi_int32_array>(info, 7, "teacher ids", n * k, true);
  const float* logp = dn::typed<float, napi_float32_array>(info, 8, "teacher logprobs", n * k, true);
  float* grad = dn::typed<float, napi_float32_array>(info, 11, "grad", n * v, false);
  dn_loss_result res{0, 0, 0, 0, 0, -1, -1};
  dn_status st = dn_cuda_loss_rows_host(&p, n, v, dtype, kernel, logits, labels, ids, logp, k, denom, grad, &res);
  if (st != DN_OK) fail(env, st, res);
  return result(env, res);
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("lossRows", Napi::Function::New(env, LossRows));
  exports.Set("lmHeadLoss", Napi::Function::New(env, LmHeadLoss));
  exports.Set("cudaLossRows", Napi::Function::New(env, CudaLossRows));
  dn::export_enum(env, exports, "lossKind", {DN_LOSS_KIND_LIST(DN_ENUM_FIELD)});
  dn::export_enum(env, exports, "lossSupport", {DN_LOSS_SUPPORT_LIST(DN_ENUM_FIELD)});
  dn::export_enum(env, exports, "dtype", {DN_DTYPE_LIST(DN_ENUM_FIELD)});
  dn::export_enum(env, exports, "cudaLossKernel", {DN_CUDA_LOSS_KERNEL_LIST(DN_ENUM_FIELD)});
}

}  // namespace

DN_REGISTER_EXPORTS(Register);
