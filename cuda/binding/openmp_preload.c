/* distillery_openmp.node: a separate, tiny addon that the loader calls before it loads the kernels, so that the OpenMP
 * runtime starts with the spin count the loader passes instead of one left in the process environment.
 * libgomp reads GOMP_SPINCOUNT once, in its constructor when it is loaded, and has no call to change it later; the
 * kernels' addon links libgomp, so by the time any of its code runs the setting is fixed. This module does not link
 * libgomp: it loads it (RTLD_GLOBAL, so the kernels' addon then finds it loaded) with GOMP_SPINCOUNT set for the
 * duration of that dlopen only, and puts the environment back as it was.
 * Export: preloadOpenMP(spinCount: number | null) → { runtime: 'loaded' | 'already-loaded' | 'missing', spinCount,
 * error? } (spinCount: the value applied, or null when the runtime kept its own setting). */
#include <dlfcn.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DN_GOMP_SONAME "libgomp.so.1"

static napi_value make_result(napi_env env, const char* runtime, double spin, const char* error) {
  napi_value out, v;
  napi_create_object(env, &out);
  napi_create_string_utf8(env, runtime, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, out, "runtime", v);
  if (spin >= 0) {
    napi_create_double(env, spin, &v);
  } else {
    napi_get_null(env, &v);
  }
  napi_set_named_property(env, out, "spinCount", v);
  if (error) {
    napi_create_string_utf8(env, error, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, out, "error", v);
  }
  return out;
}

static napi_value PreloadOpenMP(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  double spin = -1; /* < 0: leave the runtime's own setting */
  if (argc >= 1) {
    napi_valuetype t;
    napi_typeof(env, argv[0], &t);
    if (t == napi_number) {
      napi_get_value_double(env, argv[0], &spin);
      if (!(spin >= 0 && spin <= 1e18)) {
        napi_throw_range_error(env, "E_NATIVE_ARGUMENT", "preloadOpenMP: the spin count must be a number >= 0");
        return NULL;
      }
    } else if (t != napi_null && t != napi_undefined) {
      napi_throw_type_error(env, "E_NATIVE_ARGUMENT", "preloadOpenMP expects a spin count or null");
      return NULL;
    }
  }
  /* Already in the process (loaded by another module, or by an earlier load of ours): its setting is fixed. */
  void* h = dlopen(DN_GOMP_SONAME, RTLD_NOW | RTLD_NOLOAD);
  if (h) {
    dlclose(h); /* RTLD_NOLOAD took a reference */
    return make_result(env, "already-loaded", -1, NULL);
  }
  char* saved = NULL;
  if (spin >= 0) {
    const char* prev = getenv("GOMP_SPINCOUNT");
    if (prev) saved = strdup(prev);
    char buf[32];
    snprintf(buf, sizeof(buf), "%.0f", spin);
    setenv("GOMP_SPINCOUNT", buf, 1);
  }
  h = dlopen(DN_GOMP_SONAME, RTLD_NOW | RTLD_GLOBAL);
  const char* error = h ? NULL : dlerror();
  if (spin >= 0) {
    if (saved) {
      setenv("GOMP_SPINCOUNT", saved, 1);
      free(saved);
    } else {
      unsetenv("GOMP_SPINCOUNT");
    }
  }
  /* The handle is kept: libgomp stays loaded for the kernels' addon. */
  return h ? make_result(env, "loaded", spin, NULL) : make_result(env, "missing", -1, error);
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "preloadOpenMP", NAPI_AUTO_LENGTH, PreloadOpenMP, NULL, &fn);
  napi_set_named_property(env, exports, "preloadOpenMP", fn);
  return exports;
}
