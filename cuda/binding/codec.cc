// N-API bindings for the packed cache encoding (dn_codec.h): packedMaxRowBytes, packedStats, packedEncode,
// packedDecode, and the enum packedDecodeOption. Array types and lengths are checked here; a malformed row or bad
// input carries badRow.
#include <napi.h>

#include "codec/dn_codec.h"
#include "registry.h"

namespace {

[[noreturn]] void fail(Napi::Env env, dn_status st, int64_t bad_row) {
  Napi::Error err = Napi::Error::New(env, dn_last_error());
  err.Set("code", Napi::String::New(env, st == DN_NON_FINITE ? "E_NON_FINITE" : "E_NATIVE_ARGUMENT"));
  if (bad_row >= 0) err.Set("badRow", Napi::Number::New(env, (double)bad_row));
  throw err;
}

// packedMaxRowBytes(k, vocab) → number
Napi::Value MaxRowBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), (double)dn_packed_max_row_bytes((int32_t)dn::int_arg(info, 0, "k"), (int32_t)dn::int_arg(info, 1, "vocab")));
}

// packedStats(n, k, vocab, levels, ids, logp, hist, rice)
Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 8) dn::throw_error(env, "E_NATIVE_ARGUMENT", "packedStats expects 8 arguments");
  const int64_t n = dn::int_arg(info, 0, "n"), k = dn::int_arg(info, 1, "k"), vocab = dn::int_arg(info, 2, "vocab"), levels = dn::int_arg(info, 3, "levels");
  const uint32_t* ids = dn::typed<uint32_t, napi_uint32_array>(info, 4, "ids", n * k);
  const float* logp = dn::typed<float, napi_float32_array>(info, 5, "logp", n * k);
  uint32_t* hist = dn::typed<uint32_t, napi_uint32_array>(info, 6, "hist", levels + 1);
  uint8_t* rice = dn::typed<uint8_t, napi_uint8_array>(info, 7, "rice", k);
  int64_t bad = -1;
  const dn_status st = dn_packed_stats(n, (int32_t)k, (int32_t)vocab, (int32_t)levels, ids, logp, hist, rice, &bad);
  if (st != DN_OK) fail(env, st, bad);
  return env.Undefined();
}

// The code tables from arguments i .. i + 2 (order, levelRice, rice); `levels` is order's length - 1.
dn_packed_code code_arg(const Napi::CallbackInfo& info, size_t i, int64_t levels, int64_t k) {
  dn_packed_code code;
  code.levels = (int32_t)levels;
  code.order = dn::typed<uint8_t, napi_uint8_array>(info, i, "order", levels + 1);
  code.level_rice = (int32_t)dn::int_arg(info, i + 1, "levelRice");
  code.rice = dn::typed<uint8_t, napi_uint8_array>(info, i + 2, "rice", k);
  return code;
}

// packedEncode(n, k, vocab, levels, order, levelRice, rice, ids, logp, offsets, data, ref) → bytes written
Napi::Value Encode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 12) dn::throw_error(env, "E_NATIVE_ARGUMENT", "packedEncode expects 12 arguments");
  const int64_t n = dn::int_arg(info, 0, "n"), k = dn::int_arg(info, 1, "k"), vocab = dn::int_arg(info, 2, "vocab"), levels = dn::int_arg(info, 3, "levels");
  const dn_packed_code code = code_arg(info, 4, levels, k);
  const uint32_t* ids = dn::typed<uint32_t, napi_uint32_array>(info, 7, "ids", n * k);
  const float* logp = dn::typed<float, napi_float32_array>(info, 8, "logp", n * k);
  int32_t* offsets = dn::typed<int32_t, napi_int32_array>(info, 9, "offsets", n + 1);
  uint8_t* data = dn::typed<uint8_t, napi_uint8_array>(info, 10, "data", n * dn_packed_max_row_bytes((int32_t)k, (int32_t)vocab));
  float* ref = dn::typed<float, napi_float32_array>(info, 11, "ref", n);
  int64_t bad = -1;
  const dn_status st = dn_packed_encode(n, (int32_t)k, (int32_t)vocab, &code, ids, logp, offsets, data, ref, &bad);
  if (st != DN_OK) fail(env, st, bad);
  return Napi::Number::New(env, (double)offsets[n]);
}

// packedDecode(n, k, vocab, levels, order, levelRice, rice, offsets, data, ref, outIds, outLogp, options)
Napi::Value Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 13) dn::throw_error(env, "E_NATIVE_ARGUMENT", "packedDecode expects 13 arguments");
  const int64_t n = dn::int_arg(info, 0, "n"), k = dn::int_arg(info, 1, "k"), vocab = dn::int_arg(info, 2, "vocab"), levels = dn::int_arg(info, 3, "levels");
  const dn_packed_code code = code_arg(info, 4, levels, k);
  const int32_t* offsets = dn::typed<int32_t, napi_int32_array>(info, 7, "offsets", n + 1);
  const uint8_t* data = dn::typed<uint8_t, napi_uint8_array>(info, 8, "data", 0);
  const int64_t data_len = (int64_t)info[8].As<Napi::TypedArray>().ElementLength();
  const float* ref = dn::typed<float, napi_float32_array>(info, 9, "ref", n);
  uint32_t* out_ids = dn::typed<uint32_t, napi_uint32_array>(info, 10, "outIds", n * k);
  float* out_logp = dn::typed<float, napi_float32_array>(info, 11, "outLogp", n * k);
  const int32_t options = (int32_t)dn::int_arg(info, 12, "options");
  int64_t bad = -1;
  const dn_status st = dn_packed_decode(n, (int32_t)k, (int32_t)vocab, &code, offsets, data, data_len, ref, out_ids, out_logp, options, &bad);
  if (st != DN_OK) fail(env, st, bad);
  return env.Undefined();
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("packedMaxRowBytes", Napi::Function::New(env, MaxRowBytes));
  exports.Set("packedStats", Napi::Function::New(env, Stats));
  exports.Set("packedEncode", Napi::Function::New(env, Encode));
  exports.Set("packedDecode", Napi::Function::New(env, Decode));
  dn::export_enum(env, exports, "packedDecodeOption", {DN_PACKED_DECODE_OPTION_LIST(DN_ENUM_FIELD)});
}

}  // namespace

DN_REGISTER_EXPORTS(Register);
