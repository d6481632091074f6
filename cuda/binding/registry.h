// Self-registration for N-API bindings: each binding/*.cc registers its exports with
// DN_REGISTER_EXPORTS, so adding a kernel family never edits a shared file.
#pragma once
#include <napi.h>

#include <vector>

namespace dn {
using ExportFn = void (*)(Napi::Env env, Napi::Object exports);

inline std::vector<ExportFn>& export_fns() {
  static std::vector<ExportFn> fns;
  return fns;
}

struct ExportRegistrar {
  explicit ExportRegistrar(ExportFn fn) { export_fns().push_back(fn); }
};

// Throws a JS Error carrying a stable code (the TypeScript side maps it to DistillError).
[[noreturn]] inline void throw_error(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  throw err;
}
}  // namespace dn

#define DN_CONCAT_INNER(a, b) a##b
#define DN_CONCAT(a, b) DN_CONCAT_INNER(a, b)
#define DN_REGISTER_EXPORTS(fn) static ::dn::ExportRegistrar DN_CONCAT(dn_registrar_, __LINE__)(fn)
