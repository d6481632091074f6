// Addon entry: collects every registered binding and exposes build/device information.
#include <napi.h>

#include "common/dn_common.h"
#include "registry.h"

namespace {

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
#ifdef DISTILLERY_WITH_CUDA
  out.Set("variant", "cuda");
#else
  out.Set("variant", "cpu");
#endif
  out.Set("threads", dn_get_num_threads());
  int count = dn_cuda_device_count();
  Napi::Array devices = Napi::Array::New(env, count);
  for (int i = 0; i < count; ++i) {
    char name[256];
    dn_cuda_device_name(i, name, sizeof(name));
    devices.Set(i, Napi::String::New(env, name));
  }
  out.Set("cudaDevices", devices);
#if defined(__AVX512F__)
  out.Set("simd", "avx512");
#elif defined(__AVX2__)
  out.Set("simd", "avx2");
#else
  out.Set("simd", "scalar");
#endif
  return out;
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) {
    dn::throw_error(info.Env(), "E_NATIVE_ARGUMENT", "setNumThreads expects a number of threads");
  }
  dn_set_num_threads(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  for (dn::ExportFn fn : dn::export_fns()) fn(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(distillery, Init)
