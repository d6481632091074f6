// N-API bindings for the decoder engine and its optimizer helpers (dn_engine.h): modelCreate,
// modelForward, modelBackward, modelTimings, modelResetTimings, modelDestroy, adamwStep, sumSquares,
// scaleInPlace. Typed arrays are checked for type and length; data is never copied.
#include <napi.h>

#include <string>

#include "engine/dn_engine.h"
#include "registry.h"

namespace {

struct Handle {
  dn_model* m = nullptr;
  int64_t d = 0;     // model width, to size-check out / dHidden
  int64_t rows = 0;  // B·T of the last successful forward
};

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

// modelBackward(handle, params, dHidden, grads)
Napi::Value ModelBackward(const Napi::CallbackInfo& info) {
  Handle* h = handle_of(info);
  const int64_t n = dn_model_num_params(h->m);
  dn_status st = dn_model_backward(h->m, dn::f32(info, 1, "params", n), dn::f32(info, 2, "dHidden", h->rows * h->d), dn::f32(info, 3, "grads", n));
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

Napi::Value ModelResetTimings(const Napi::CallbackInfo& info) {
  dn_model_reset_timings(model_of(info));
  return info.Env().Undefined();
}

// adamwStep(params, grads, m, v, offset, size, lr, beta1, beta2, eps, weightDecay, step)
Napi::Value AdamwStep(const Napi::CallbackInfo& info) {
  const int64_t off = dn::int_arg(info, 4, "offset"), size = dn::int_arg(info, 5, "size");
  const int64_t need = off + size;
  dn_status st = dn_adamw_step(size, dn::f32(info, 0, "params", need) + off, dn::f32(info, 1, "grads", need) + off,
                               dn::f32(info, 2, "m", need) + off, dn::f32(info, 3, "v", need) + off,
                               (float)dn::num_arg(info, 6, "lr"), (float)dn::num_arg(info, 7, "beta1"), (float)dn::num_arg(info, 8, "beta2"),
                               (float)dn::num_arg(info, 9, "eps"), (float)dn::num_arg(info, 10, "weightDecay"), dn::int_arg(info, 11, "step"));
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
  exports.Set("modelTimings", Napi::Function::New(env, ModelTimings));
  exports.Set("modelResetTimings", Napi::Function::New(env, ModelResetTimings));
  exports.Set("adamwStep", Napi::Function::New(env, AdamwStep));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares));
  exports.Set("scaleInPlace", Napi::Function::New(env, ScaleInPlace));
}

}  // namespace

DN_REGISTER_EXPORTS(Register);
