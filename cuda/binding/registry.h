// Self-registration for N-API bindings: each binding/*.cc registers its exports (functions and its C enums) with
// DN_REGISTER_EXPORTS, so adding a kernel family never edits a shared file; and the argument checks they share.
#pragma once
#include <napi.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "common/dn_common.h"

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
// Argument i as a typed array of Kind holding at least `need` elements (null/undefined allowed when
// `optional`, giving nullptr); anything else throws E_NATIVE_ARGUMENT naming the argument.
template <typename T, napi_typedarray_type Kind>
T* typed(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t need, bool optional = false) {
  Napi::Value v = info[i];
  if (optional && (v.IsNull() || v.IsUndefined())) return nullptr;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != Kind)
    throw_error(info.Env(), "E_NATIVE_ARGUMENT", std::string(name) + " has the wrong array type");
  Napi::TypedArray a = v.As<Napi::TypedArray>();
  if ((int64_t)a.ElementLength() < need)
    throw_error(info.Env(), "E_NATIVE_ARGUMENT",
                std::string(name) + " is too short: expected " + std::to_string(need) + " elements, got " +
                    std::to_string(a.ElementLength()));
  // The data pointer straight from the typed array: it is valid for views of a SharedArrayBuffer too, which
  // Napi::ArrayBuffer (napi_get_arraybuffer_info) refuses.
  void* data = nullptr;
  if (napi_get_typedarray_info(info.Env(), a, nullptr, nullptr, &data, nullptr, nullptr) != napi_ok)
    throw_error(info.Env(), "E_NATIVE_ARGUMENT", std::string(name) + " cannot be read");
  return static_cast<T*>(data);
}

// Argument i as a number (integral: truncated toward zero); anything else throws E_NATIVE_ARGUMENT.
inline int64_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw_error(info.Env(), "E_NATIVE_ARGUMENT", std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().Int64Value();
}
inline double num_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw_error(info.Env(), "E_NATIVE_ARGUMENT", std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}
inline float* f32(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t need) {
  return typed<float, napi_float32_array>(info, i, name, need);
}
// Adds exports.enums[group] = { TypeScript name: value } for one C enum, from its list macro:
// dn::export_enum(env, exports, "lossKind", {DN_LOSS_KIND_LIST(DN_ENUM_FIELD)}).
#define DN_ENUM_FIELD(name, value, ts_name) {ts_name, (int)(name)},
inline void export_enum(Napi::Env env, Napi::Object exports, const char* group,
                        std::initializer_list<std::pair<const char*, int>> fields) {
  Napi::Value existing = exports.Get("enums");
  Napi::Object enums = existing.IsObject() ? existing.As<Napi::Object>() : Napi::Object::New(env);
  Napi::Object table = Napi::Object::New(env);
  for (const auto& [name, value] : fields) table.Set(name, value);
  table.Freeze();
  enums.Set(group, table);
  exports.Set("enums", enums);
}
// A failed dn_* call as a JS error: E_DEVICE for memory, E_NATIVE_ARGUMENT otherwise, with dn_last_error().
[[noreturn]] inline void fail_status(Napi::Env env, dn_status st) {
  throw_error(env, st == DN_OUT_OF_MEMORY ? "E_DEVICE" : "E_NATIVE_ARGUMENT", dn_last_error());
}
}  // namespace dn

#define DN_CONCAT_INNER(a, b) a##b
#define DN_CONCAT(a, b) DN_CONCAT_INNER(a, b)
#define DN_REGISTER_EXPORTS(fn) static ::dn::ExportRegistrar DN_CONCAT(dn_registrar_, __LINE__)(fn)
