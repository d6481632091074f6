// Addon entry: collects every registered binding and exposes build/device information.
#include <napi.h>

#include <iterator>
#include <string>
#include <utility>

#include "common/dn_common.h"
#include "registry.h"

namespace {

#define DN_ISA_NAME(name, value, ts_name) std::pair<const char*, dn_isa>{ts_name, name},
constexpr std::pair<const char*, dn_isa> kIsaNames[] = {DN_ISA_LIST(DN_ISA_NAME)};
#undef DN_ISA_NAME

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
  // The level the dispatched kernels (GEMM, loss rows) run, and every level this CPU and build can run, best first.
  Napi::Array levels = Napi::Array::New(env);
  for (size_t i = std::size(kIsaNames); i-- > 0;) {
    const auto& [name, isa] = kIsaNames[i];
    if (isa == dn_get_isa()) out.Set("simd", name);
    if (dn_isa_supported(isa)) levels.Set(levels.Length(), name);
  }
  out.Set("simdLevels", levels);
  // The flags the rest of the CPU kernels were compiled with.
#if defined(__AVX512F__)
  out.Set("buildSimd", "avx512");
#elif defined(__AVX2__)
  out.Set("buildSimd", "avx2");
#else
  out.Set("buildSimd", "scalar");
#endif
  return out;
}

// setIsa(name): the instruction-set level of the dispatched kernels, by its name in DN_ISA_LIST.
Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  const std::string want = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  for (const auto& [name, isa] : kIsaNames) {
    if (want != name) continue;
    if (dn_set_isa(isa) != DN_OK) dn::throw_error(info.Env(), "E_NATIVE_ARGUMENT", dn_last_error());
    return info.Env().Undefined();
  }
  dn::throw_error(info.Env(), "E_NATIVE_ARGUMENT", "setIsa expects \"avx512\", \"avx2\" or \"scalar\"");
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
  exports.Set("setIsa", Napi::Function::New(env, SetIsa));
  for (dn::ExportFn fn : dn::export_fns()) fn(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(distillery, Init)
