// N-API bindings for the decoder engine and its optimizer helpers (dn_engine.h): modelCreate,
// modelForward, modelBackward, modelPrefill, modelDecode, modelTimings, modelResetTimings, modelMoeStats, modelDestroy, adamwStep,
// sumSquares, scaleInPlace; one MoE FFN alone (moeCreate, moeForward, moeBackward, moeStats, moeTimings) and the
// SwiGLU kernels (swigluForward, swigluBackward) for the MoE tests and the MoE-vs-dense benchmark. Typed arrays
// are checked for type and length; data is never copied.
#include <napi.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/dn_engine.h"
#include "registry.h"

namespace {

struct Handle {
  dn_model* m = nullptr;
  int64_t d = 0;     // model width, to size-check out / dHidden
  int64_t rows = 0;  // B·T of the last successful forward
  int64_t kv_b = 0;  // sequences in the KV cache of the last prefill (0: none)
};

// The moe block of a config object (src/core/moe.ts, defaults applied by parseModelConfig) as dn_moe_config;
// returns the `every` field (0 when the object has no moe block).
int32_t moe_config(Napi::Env env, Napi::Object o, dn_moe_config* c) {
  *c = dn_moe_config{0, 0, 0, 0, 0, 0, 0.0f};
  Napi::Value v = o.Get("moe");
  if (v.IsUndefined() || v.IsNull()) return 0;
  if (!v.IsObject()) dn::throw_error(env, "E_NATIVE_ARGUMENT", "model config field moe must be an object");
  Napi::Object m = v.As<Napi::Object>();
  auto num = [&](Napi::Object obj, const char* key) -> double {
    Napi::Value x = obj.Get(key);
    if (!x.IsNumber()) dn::throw_error(env, "E_NATIVE_ARGUMENT", std::string("moe config field ") + key + " is missing");
    return x.As<Napi::Number>().DoubleValue();
  };
  auto str = [&](Napi::Object obj, const char* key) -> std::string {
    Napi::Value x = obj.Get(key);
    if (!x.IsString()) dn::throw_error(env, "E_NATIVE_ARGUMENT", std::string("moe config field ") + key + " is missing");
    return x.As<Napi::String>().Utf8Value();
  };
  c->experts = (int32_t)num(m, "experts");
  c->active = (int32_t)num(m, "activeExperts");
  c->expert_ffn = (int32_t)num(m, "expertFfnDim");
  c->shared_ffn = (int32_t)num(m, "sharedExperts") * c->expert_ffn;
  const std::string router = str(m, "router");
  if (router != "sigmoid" && router != "softmax") dn::throw_error(env, "E_NATIVE_ARGUMENT", "unknown moe router " + router);
  c->router = router == "sigmoid" ? 0 : 1;
  Napi::Value b = m.Get("balance");
  if (!b.IsObject()) dn::throw_error(env, "E_NATIVE_ARGUMENT", "moe config field balance is missing");
  const std::string kind = str(b.As<Napi::Object>(), "kind");
  if (kind == "aux-loss") {
    c->balance = 0;
    c->coef = (float)num(b.As<Napi::Object>(), "coef");
  } else if (kind == "bias") {
    c->balance = 1;
  } else {
    dn::throw_error(env, "E_NATIVE_ARGUMENT", "unknown moe balance kind " + kind);
  }
  return (int32_t)num(m, "every");
}

Handle* handle_of(const Napi::CallbackInfo& info) {
  if (!info[0].IsExternal()) dn::throw_error(info.Env(), "E_NATIVE_ARGUMENT", "expected a model handle");
  Handle* h = info[0].As<Napi::External<Handle>>().Data();
  if (!h->m) dn::throw_error(info.Env(), "E_NATIVE_ARGUMENT", "the model engine was disposed");
  return h;
}

dn_model* model_of(const Napi::CallbackInfo& info) { return handle_of(info)->m; }

Napi::Value ModelCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) dn::throw_error(env, "E_NATIVE_ARGUMENT", "modelCreate expects a config object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto get = [&](const char* key) -> double {
    Napi::Value v = o.Get(key);
    if (!v.IsNumber() && !v.IsBoolean()) dn::throw_error(env, "E_NATIVE_ARGUMENT", std::string("model config field ") + key + " is missing");
    return v.IsBoolean() ? (v.As<Napi::Boolean>().Value() ? 1.0 : 0.0) : v.As<Napi::Number>().DoubleValue();
  };
  dn_model_config c;
  c.vocab_size = (int32_t)get("vocabSize");
  c.d_model = (int32_t)get("dModel");
  c.n_layers = (int32_t)get("nLayers");
  c.n_heads = (int32_t)get("nHeads");
  c.n_kv_heads = (int32_t)get("nKvHeads");
  c.ffn_dim = (int32_t)get("ffnDim");
  c.context_length = (int32_t)get("contextLength");
  c.tie_embeddings = (int32_t)get("tieEmbeddings");
  c.rope_theta = (float)get("ropeTheta");
  c.norm_eps = (float)get("normEps");
  c.moe_every = moe_config(env, o, &c.moe);
  dn_model* m = nullptr;
  dn_status st = dn_model_create(&c, &m);
  if (st != DN_OK) dn::fail_status(env, st);
  Handle* h = new Handle{m, c.d_model, 0};
  return Napi::External<Handle>::New(env, h, [](Napi::Env, Handle* hh) {
    dn_model_destroy(hh->m);
    delete hh;
  });
}

Napi::Value ModelDestroy(const Napi::CallbackInfo& info) {
  if (info[0].IsExternal()) {
    Handle* h = info[0].As<Napi::External<Handle>>().Data();
    dn_model_destroy(h->m);
    h->m = nullptr;
  }
  return info.Env().Undefined();
}

// modelForward(handle, params, tokens, B, T, out)
Napi::Value ModelForward(const Napi::CallbackInfo& info) {
  Handle* h = handle_of(info);
  const int64_t B = dn::int_arg(info, 3, "batch"), T = dn::int_arg(info, 4, "seqLen");
  if (B < 1 || T < 1) dn::throw_error(info.Env(), "E_NATIVE_ARGUMENT", "batch and seqLen must be positive");
  const float* params = dn::f32(info, 1, "params", dn_model_num_params(h->m));
  const int32_t* tokens = dn::typed<int32_t, napi_int32_array>(info, 2, "tokens", B * T);
  float* out = dn::f32(info, 5, "out", B * T * h->d);
  h->rows = 0;
  dn_status st = dn_model_forward(h->m, params, tokens, B, T, out);
  if (st != DN_OK) dn::fail_status(info.Env(), st);
  h->rows = B * T;
  return info.Env().Undefined();
}

// modelPrefill(handle, params, tokens, B, T, maxLen, out): forward on the prompts, keeping the KV cache.
Napi::Value ModelPrefill(const Napi::CallbackInfo& info) {
  Handle* h = handle_of(info);
  const int64_t B = dn::int_arg(info, 3, "batch"), T = dn::int_arg(info, 4, "promptLen");
  const int64_t max_len = dn::int_arg(info, 5, "maxLen");
  if (B < 1 || T < 1) dn::throw_error(info.Env(), "E_NATIVE_ARGUMENT", "batch and promptLen must be positive");
  const float* params = dn::f32(info, 1, "params", dn_model_num_params(h->m));
  const int32_t* tokens = dn::typed<int32_t, napi_int32_array>(info, 2, "tokens", B * T);
  float* out = dn::f32(info, 6, "out", B * T * h->d);
  h->rows = 0;
  h->kv_b = 0;
  dn_status st = dn_model_prefill(h->m, params, tokens, B, T, max_len, out);
  if (st != DN_OK) dn::fail_status(info.Env(), st);
  h->rows = B * T;
  h->kv_b = B;
  return info.Env().Undefined();
}

// modelDecode(handle, params, tokens [B], out [B×d]): one position on the KV cache.
Napi::Value ModelDecode(const Napi::CallbackInfo& info) {
  Handle* h = handle_of(info);
  if (h->kv_b < 1) dn::throw_error(info.Env(), "E_NATIVE_ARGUMENT", "modelDecode needs a modelPrefill first");
  const float* params = dn::f32(info, 1, "params", dn_model_num_params(h->m));
  const int32_t* tokens = dn::typed<int32_t, napi_int32_array>(info, 2, "tokens", h->kv_b);
  float* out = dn::f32(info, 3, "out", h->kv_b * h->d);
  h->rows = 0;
  dn_status st = dn_model_decode(h->m, params, tokens, out);
  if (st != DN_OK) dn::fail_status(info.Env(), st);
  return info.Env().Undefined();
}

// modelBackward(handle, params, dHidden, grads, auxWeight?)
Napi::Value ModelBackward(const Napi::CallbackInfo& info) {
  Handle* h = handle_of(info);
  const int64_t n = dn_model_num_params(h->m);
  const float aux = info[4].IsUndefined() ? 1.0f : (float)dn::num_arg(info, 4, "auxWeight");
  dn_status st = dn_model_backward(h->m, dn::f32(info, 1, "params", n), dn::f32(info, 2, "dHidden", h->rows * h->d), dn::f32(info, 3, "grads", n), aux);
  if (st != DN_OK) dn::fail_status(info.Env(), st);
  return info.Env().Undefined();
}

Napi::Value ModelTimings(const Napi::CallbackInfo& info) {
  dn_model* m = model_of(info);
  double s[DN_OP_COUNT];
  dn_model_op_seconds(m, s);
  Napi::Object o = Napi::Object::New(info.Env());
#define DN_TIMING_FIELD(name, value, ts_name) o.Set(ts_name, s[name]);
  DN_MODEL_OP_LIST(DN_TIMING_FIELD)
#undef DN_TIMING_FIELD
  return o;
}

// One MoE layer's statistics as {load: number[], tokens, entropy, balance, auxLoss}.
Napi::Object stats_object(Napi::Env env, const double* load, int64_t E, const double* sc) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Array l = Napi::Array::New(env, (size_t)E);
  for (int64_t e = 0; e < E; ++e) l.Set((uint32_t)e, load[e]);
  o.Set("load", l);
  o.Set("tokens", sc[0]);
  o.Set("entropy", sc[1]);
  o.Set("balance", sc[2]);
  o.Set("auxLoss", sc[3]);
  return o;
}

// modelMoeStats(handle, experts) → one statistics object per MoE layer (layer order) of the last forward.
Napi::Value ModelMoeStats(const Napi::CallbackInfo& info) {
  Handle* h = handle_of(info);
  const int64_t E = dn::int_arg(info, 1, "experts");
  const int32_t n = dn_model_moe_layers(h->m);
  Napi::Array out = Napi::Array::New(info.Env(), (size_t)n);
  std::vector<double> load((size_t)std::max<int64_t>(E, 1));
  for (int32_t i = 0; i < n; ++i) {
    double sc[4];
    dn_status st = dn_model_moe_stats(h->m, i, load.data(), sc);
    if (st != DN_OK) dn::fail_status(info.Env(), st);
    out.Set((uint32_t)i, stats_object(info.Env(), load.data(), E, sc));
  }
  return out;
}

// ---- one MoE FFN (tests and benchmarks) ----
struct MoeHandle {
  dn_moe* moe = nullptr;
  int64_t d = 0, E = 0, rows = 0;
};

MoeHandle* moe_of(const Napi::CallbackInfo& info) {
  if (!info[0].IsExternal()) dn::throw_error(info.Env(), "E_NATIVE_ARGUMENT", "expected an MoE handle");
  return info[0].As<Napi::External<MoeHandle>>().Data();
}

// offsets as a Float64Array [router, router_bias, shared_w1, shared_w2, gate_up, down] (−1: absent)
dn_moe_offsets moe_offsets(const Napi::CallbackInfo& info, size_t i) {
  const double* v = dn::typed<double, napi_float64_array>(info, i, "offsets", 6);
  return dn_moe_offsets{(int64_t)v[0], (int64_t)v[1], (int64_t)v[2], (int64_t)v[3], (int64_t)v[4], (int64_t)v[5]};
}

// moeCreate(dModel, {moe: {...}})
Napi::Value MoeCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t d = dn::int_arg(info, 0, "dModel");
  if (!info[1].IsObject()) dn::throw_error(env, "E_NATIVE_ARGUMENT", "moeCreate expects {moe: {...}}");
  dn_moe_config c;
  if (moe_config(env, info[1].As<Napi::Object>(), &c) == 0) dn::throw_error(env, "E_NATIVE_ARGUMENT", "moeCreate needs a moe block");
  dn_moe* moe = nullptr;
  dn_status st = dn_moe_create(d, &c, &moe);
  if (st != DN_OK) dn::fail_status(env, st);
  return Napi::External<MoeHandle>::New(env, new MoeHandle{moe, d, c.experts, 0}, [](Napi::Env, MoeHandle* hh) {
    dn_moe_destroy(hh->moe);
    delete hh;
  });
}

// moeForward(handle, params, offsets, N, h, out): out += MoE(h)
Napi::Value MoeForward(const Napi::CallbackInfo& info) {
  MoeHandle* h = moe_of(info);
  const int64_t N = dn::int_arg(info, 3, "N");
  if (N < 1) dn::throw_error(info.Env(), "E_NATIVE_ARGUMENT", "N must be positive");
  const dn_moe_offsets o = moe_offsets(info, 2);
  h->rows = 0;
  dn_status st = dn_moe_forward(h->moe, dn::f32(info, 1, "params", 0), &o, N, dn::f32(info, 4, "h", N * h->d), dn::f32(info, 5, "out", N * h->d));
  if (st != DN_OK) dn::fail_status(info.Env(), st);
  h->rows = N;
  return info.Env().Undefined();
}

// moeBackward(handle, params, offsets, dOut, auxWeight, grads, dh)
Napi::Value MoeBackward(const Napi::CallbackInfo& info) {
  MoeHandle* h = moe_of(info);
  const dn_moe_offsets o = moe_offsets(info, 2);
  Napi::TypedArray p = info[1].As<Napi::TypedArray>();
  dn_status st = dn_moe_backward(h->moe, dn::f32(info, 1, "params", 0), &o, dn::f32(info, 3, "dOut", h->rows * h->d),
                                 (float)dn::num_arg(info, 4, "auxWeight"), dn::f32(info, 5, "grads", (int64_t)p.ElementLength()),
                                 dn::f32(info, 6, "dh", h->rows * h->d));
  if (st != DN_OK) dn::fail_status(info.Env(), st);
  return info.Env().Undefined();
}

Napi::Value MoeStats(const Napi::CallbackInfo& info) {
  MoeHandle* h = moe_of(info);
  std::vector<double> load((size_t)h->E);
  double sc[4];
  dn_status st = dn_moe_stats(h->moe, load.data(), sc);
  if (st != DN_OK) dn::fail_status(info.Env(), st);
  return stats_object(info.Env(), load.data(), h->E, sc);
}

// swigluForward(n, f, au, m): m [n×f] = silu(a) ⊙ u over au rows [a | u].
Napi::Value SwigluForward(const Napi::CallbackInfo& info) {
  const int64_t n = dn::int_arg(info, 0, "n"), f = dn::int_arg(info, 1, "f");
  dn_status st = dn_swiglu_forward(n, f, dn::f32(info, 2, "au", n * 2 * f), dn::f32(info, 3, "m", n * f));
  if (st != DN_OK) dn::fail_status(info.Env(), st);
  return info.Env().Undefined();
}

// swigluBackward(n, f, dm, au, dau): dau rows [da | du] from dm [n×f].
Napi::Value SwigluBackward(const Napi::CallbackInfo& info) {
  const int64_t n = dn::int_arg(info, 0, "n"), f = dn::int_arg(info, 1, "f");
  dn_status st = dn_swiglu_backward(n, f, dn::f32(info, 2, "dm", n * f), dn::f32(info, 3, "au", n * 2 * f),
                                    dn::f32(info, 4, "dau", n * 2 * f));
  if (st != DN_OK) dn::fail_status(info.Env(), st);
  return info.Env().Undefined();
}

Napi::Value MoeTimings(const Napi::CallbackInfo& info) {
  MoeHandle* h = moe_of(info);
  double s[DN_OP_COUNT];
  dn_moe_op_seconds(h->moe, s);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("gemm", s[DN_OP_GEMM]);
  o.Set("swiglu", s[DN_OP_SWIGLU]);
  o.Set("route", s[DN_OP_ROUTE]);
  o.Set("gather", s[DN_OP_GATHER]);
  return o;
}

Napi::Value ModelResetTimings(const Napi::CallbackInfo& info) {
  dn_model_reset_timings(model_of(info));
  return info.Env().Undefined();
}

// adamwStep(params, grads, m, v, offset, size, lr, beta1, beta2, eps, weightDecay, step[, gradScale = 1[, zeroGrads]])
Napi::Value AdamwStep(const Napi::CallbackInfo& info) {
  const int64_t off = dn::int_arg(info, 4, "offset"), size = dn::int_arg(info, 5, "size");
  const int64_t need = off + size;
  dn_status st = dn_adamw_step(size, dn::f32(info, 0, "params", need) + off, dn::f32(info, 1, "grads", need) + off,
                               dn::f32(info, 2, "m", need) + off, dn::f32(info, 3, "v", need) + off,
                               (float)dn::num_arg(info, 6, "lr"), (float)dn::num_arg(info, 7, "beta1"), (float)dn::num_arg(info, 8, "beta2"),
                               (float)dn::num_arg(info, 9, "eps"), (float)dn::num_arg(info, 10, "weightDecay"), dn::int_arg(info, 11, "step"),
                               info.Length() > 12 ? (float)dn::num_arg(info, 12, "gradScale") : 1.0f,
                               info.Length() > 13 && info[13].ToBoolean().Value() ? 1 : 0);
  if (st != DN_OK) dn::fail_status(info.Env(), st);
  return info.Env().Undefined();
}

Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  Napi::TypedArray a = info[0].As<Napi::TypedArray>();
  const float* x = dn::f32(info, 0, "x", 0);
  return Napi::Number::New(info.Env(), dn_sum_squares((int64_t)a.ElementLength(), x));
}

Napi::Value ScaleInPlace(const Napi::CallbackInfo& info) {
  Napi::TypedArray a = info[0].As<Napi::TypedArray>();
  dn_scale((int64_t)a.ElementLength(), dn::f32(info, 0, "x", 0), (float)dn::num_arg(info, 1, "scale"));
  return info.Env().Undefined();
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("modelCreate", Napi::Function::New(env, ModelCreate));
  exports.Set("modelDestroy", Napi::Function::New(env, ModelDestroy));
  exports.Set("modelForward", Napi::Function::New(env, ModelForward));
  exports.Set("modelBackward", Napi::Function::New(env, ModelBackward));
  exports.Set("modelPrefill", Napi::Function::New(env, ModelPrefill));
  exports.Set("modelDecode", Napi::Function::New(env, ModelDecode));
  exports.Set("modelTimings", Napi::Function::New(env, ModelTimings));
  exports.Set("modelResetTimings", Napi::Function::New(env, ModelResetTimings));
  exports.Set("modelMoeStats", Napi::Function::New(env, ModelMoeStats));
  exports.Set("moeCreate", Napi::Function::New(env, MoeCreate));
  exports.Set("moeForward", Napi::Function::New(env, MoeForward));
  exports.Set("moeBackward", Napi::Function::New(env, MoeBackward));
  exports.Set("moeStats", Napi::Function::New(env, MoeStats));
  exports.Set("moeTimings", Napi::Function::New(env, MoeTimings));
  exports.Set("swigluForward", Napi::Function::New(env, SwigluForward));
  exports.Set("swigluBackward", Napi::Function::New(env, SwigluBackward));
  exports.Set("adamwStep", Napi::Function::New(env, AdamwStep));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares));
  exports.Set("scaleInPlace", Napi::Function::New(env, ScaleInPlace));
}

}  // namespace

DN_REGISTER_EXPORTS(Register);
