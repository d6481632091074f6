// Status reporting and thread control shared by every CPU kernel (the C ABI in dn_common.h).
#include "common/dn_common.h"

#include <omp.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>

static thread_local char g_last_error[1024] = "";

extern "C" const char* dn_last_error(void) { return g_last_error; }

extern "C" dn_status dn_fail(dn_status status, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(g_last_error, sizeof(g_last_error), fmt, args);
  va_end(args);
  return status;
}

extern "C" void dn_set_num_threads(int n) {
  omp_set_num_threads(n > 0 ? n : omp_get_num_procs());
}

extern "C" int dn_get_num_threads(void) { return omp_get_max_threads(); }

// Levels are compiled in on x86-64 only (CMakeLists.txt: the *_avx512.cpp / *_avx2.cpp sources); AVX-512 means the
// F, DQ, BW and VL subsets those sources are compiled with. __builtin_cpu_supports also checks the OS saves the state.
extern "C" int dn_isa_supported(dn_isa isa) {
  switch (isa) {
    case DN_ISA_SCALAR:
      return 1;
#if defined(__x86_64__) && defined(__GNUC__)
    case DN_ISA_AVX2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case DN_ISA_AVX512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && dn_isa_supported(DN_ISA_AVX2);
#endif
    default:
      return 0;
  }
}

static dn_isa best_isa() {
  if (dn_isa_supported(DN_ISA_AVX512)) return DN_ISA_AVX512;
  if (dn_isa_supported(DN_ISA_AVX2)) return DN_ISA_AVX2;
  return DN_ISA_SCALAR;
}

static std::atomic<int> g_isa{-1};

extern "C" dn_status dn_set_isa(dn_isa isa) {
  if (!dn_isa_supported(isa))
    return dn_fail(DN_UNSUPPORTED, "instruction-set level %d is not supported here", (int)isa);
  g_isa.store((int)isa, std::memory_order_relaxed);
  return DN_OK;
}

extern "C" dn_isa dn_get_isa(void) {
  int isa = g_isa.load(std::memory_order_relaxed);
  if (isa < 0) {
    isa = (int)best_isa();
    g_isa.store(isa, std::memory_order_relaxed);
  }
  return (dn_isa)isa;
}

#ifndef DISTILLERY_WITH_CUDA
extern "C" int dn_cuda_device_count(void) { return 0; }
extern "C" void dn_cuda_device_name(int, char* buf, size_t len) {
  if (len > 0) buf[0] = '\0';
}
#endif
